"""The embedded-services launcher: real servers on free loopback ports, data under one folder.

Only services whose ``AIMG_*`` URL is not configured are started. Each runs as a child
process (its own process group), is waited for until it answers, and is stopped on exit.

One data folder has one owner: the launcher that holds ``<data dir>/launcher.lock`` (an
``flock``, released by the kernel however the owner dies). Only the owner starts servers,
writes ``<data dir>/services.json`` (the URLs and the pids of what runs) and removes it.
Every other process of the same data folder (``aimg worker``, ``aimg migrate``, a second
shell) reads the registry and starts nothing. A registry whose lock is free belongs to a
launcher that died: the next launcher stops the servers it left running, then starts anew.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Mapping

from .mongo import MongoService
from .postgres import PostgresService
from .redis import RedisService
from .seaweedfs import SeaweedService
from .service import EXTRA, EmbeddedService, ServiceFailed
from .smtp import SmtpService

ALL_SERVICES: tuple[type[EmbeddedService], ...] = (MongoService, PostgresService, RedisService, SeaweedService, SmtpService)
REGISTRY = "services.json"
LOCK = "launcher.lock"


class DataDirLock:
    """An exclusive ``flock`` on ``<data dir>/launcher.lock``; held as long as the file stays open."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / LOCK
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def is_held_elsewhere(self) -> bool:
        """Whether a live process holds the lock (a free lock means no launcher runs)."""
        if not self.path.exists():
            return False
        probe = DataDirLock(self.path.parent)
        if probe.acquire():
            probe.release()
            return False
        return True


def read_registry(data_dir: Path) -> dict | None:
    try:
        return json.loads((Path(data_dir) / REGISTRY).read_text())
    except (OSError, ValueError):
        return None


def running_services_env(data_dir: Path) -> dict[str, str]:
    """The URLs of the embedded services a live launcher of ``data_dir`` runs ({} when none)."""
    state = read_registry(data_dir)
    if not state or not DataDirLock(data_dir).is_held_elsewhere():
        return {}
    return dict(state.get("env", {}))


def describe_registry(data_dir: Path) -> str:
    """One line saying what a non-launching command found in ``data_dir``."""
    path = Path(data_dir) / REGISTRY
    state = read_registry(data_dir)
    if state is None:
        return f"no embedded services registry at {path}"
    if not DataDirLock(data_dir).is_held_elsewhere():
        return f"{path} belongs to launcher pid {state.get('pid')}, which is no longer running"
    return f"embedded services of launcher pid {state.get('pid')} ({path})"


def _started(pid: int) -> str:
    """The process's start time (clock ticks since boot): with the pid, it names one process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(pid: int) -> bool:
    """Running (a zombie whose parent has not reaped it is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class EmbeddedServices:
    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None, only: set[str] | None = None,
                 say: Callable[[str], None] = print):
        self.data_dir = Path(data_dir).resolve()
        self.env = dict(os.environ if env is None else env)
        self.only = only
        self.say = say
        self.running: list[EmbeddedService] = []
        self.exports: dict[str, str] = {}
        self.children: dict[str, int] = {}
        self.lock = DataDirLock(self.data_dir)

    @property
    def owner(self) -> bool:
        return self.lock.held

    def _wanted(self, configured: Mapping[str, str]) -> list[EmbeddedService]:
        wanted = []
        for cls in ALL_SERVICES:
            if self.only is not None and cls.name not in self.only:
                continue
            if configured.get(cls.env_var):
                continue
            wanted.append(cls(self.data_dir / cls.name, self.data_dir / "logs"))
        return wanted

    def start(self, wait_s: float = 120.0) -> dict[str, str]:
        """Start what is not configured (in parallel), or reuse what the data dir's owner
        runs; returns the environment to export."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for cls in ALL_SERVICES:
            if (self.only is None or cls.name in self.only) and self.env.get(cls.env_var):
                self.say(f"  {cls.name:<10} configured: {cls.env_var} (not started)")
        wanted = self._wanted(self.env)
        if not wanted:
            return {}
        missing = [need for svc in wanted for need in svc.missing()]
        if missing:
            # One line, before anything starts: the fix is one install, or configuring the URLs.
            raise ServiceFailed(f"the embedded services need the '{EXTRA}' extra: pip install 'aimg[{EXTRA}]' "
                                f"(missing: {', '.join(missing)}), or configure "
                                f"{', '.join(svc.env_var for svc in wanted)}")
        deadline = time.monotonic() + wait_s
        while not self.lock.acquire():
            # Another launcher owns the folder: use its registry once it is written.
            state = read_registry(self.data_dir)
            if state and state.get("ready") and _alive(int(state.get("pid", 0))):
                return self._reuse(state)
            if time.monotonic() > deadline:
                raise ServiceFailed(f"another launcher holds {self.lock.path} but wrote no {REGISTRY}")
            time.sleep(0.2)
        try:
            self._stop_orphans()
            return self._start_owned()
        except BaseException:
            self.stop()
            raise

    def _reuse(self, state: dict) -> dict[str, str]:
        env = dict(state.get("env", {}))
        missing = [svc.name for svc in self._wanted({**env, **self.env})]
        if missing:
            raise ServiceFailed(f"the embedded services of {self.data_dir} are run by pid {state.get('pid')}, "
                                f"which does not run {', '.join(missing)}; stop it or configure them")
        self.exports = {k: v for k, v in env.items() if not self.env.get(k)}
        self.say(f"  using the embedded services of pid {state.get('pid')} ({self.data_dir / REGISTRY})")
        return dict(self.exports)

    def _start_owned(self) -> dict[str, str]:
        services = self._wanted(self.env)
        errors: list[str] = []
        self._write_state(ready=False)
        with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
            futures = {pool.submit(svc.start): svc for svc in services}
            for future, svc in futures.items():
                try:
                    future.result()
                    self.running.append(svc)
                except Exception as exc:  # noqa: BLE001 - reported, then everything is stopped
                    errors.append(f"{svc.name}: {exc}")
                    if svc.process is not None:
                        self.running.append(svc)  # started but not ready: stopped below
        if errors:
            self.stop()
            raise ServiceFailed("embedded services failed to start:\n  " + "\n  ".join(errors))
        for svc in self.running:
            self.exports.update(svc.exports())
            self.say(f"  {svc.name:<10} {svc.describe()}")
        self._write_state(ready=True)
        return dict(self.exports)

    def add_child(self, name: str, pid: int) -> None:
        """Record a process this launcher started beside the services (stopped as an orphan
        by the next launcher if this one dies without stopping it)."""
        self.children[name] = pid
        if self.owner:
            self._write_state(ready=True)

    def _write_state(self, ready: bool) -> None:
        pids = {svc.name: svc.process.pid for svc in self.running if svc.process is not None}
        pids.update(self.children)
        processes = {name: {"pid": pid, "started": _started(pid)} for name, pid in pids.items()}
        state = {"pid": os.getpid(), "ready": ready, "env": self.exports, "processes": processes}
        path = self.data_dir / REGISTRY
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(state, fh, indent=2)
        os.replace(tmp, path)

    def _stop_orphans(self) -> None:
        """Stop what a dead launcher of this data dir left running (its registry, and a
        PostgreSQL whose postmaster.pid names a live server of this folder)."""
        state = read_registry(self.data_dir) or {}
        recorded = {int(p["pid"]): p.get("started") for p in (state.get("processes") or {}).values()}
        orphans = [pid for pid, started in recorded.items()
                   if pid != os.getpid() and _alive(pid) and started and _started(pid) == started]
        postmaster = self.data_dir / "postgres" / "pgdata" / "postmaster.pid"
        try:
            pid = int(postmaster.read_text().split()[0])
            if pid not in orphans and _alive(pid) and str(self.data_dir) in Path(f"/proc/{pid}/cmdline").read_text():
                orphans.append(pid)
        except (OSError, ValueError, IndexError):
            pass
        for pid in orphans:
            # Each service leads its own process group; SIGINT is the fast stop of all of them.
            try:
                os.killpg(pid, signal.SIGINT)
            except (ProcessLookupError, PermissionError):
                continue
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in orphans) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in orphans:
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if orphans:
            self.say(f"  stopped {len(orphans)} process(es) left running by launcher pid {state.get('pid', '?')}, "
                     f"which died")
        (self.data_dir / REGISTRY).unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop everything in parallel; only the owner touches the registry."""

        def stop_one(svc: EmbeddedService) -> None:
            try:
                svc.stop()
            except Exception as exc:  # noqa: BLE001
                self.say(f"  {svc.name}: stop failed: {exc}")

        if self.running:
            with ThreadPoolExecutor(max_workers=len(self.running)) as pool:
                list(pool.map(stop_one, self.running))
        self.running.clear()
        if self.owner:
            (self.data_dir / REGISTRY).unlink(missing_ok=True)
            self.lock.release()

    def __enter__(self) -> "EmbeddedServices":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["EmbeddedServices", "ServiceFailed", "DataDirLock", "running_services_env", "describe_registry",
           "read_registry", "ALL_SERVICES"]
