"""What every embedded service has in common: a child process, a port, a readiness check."""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable


class ServiceFailed(RuntimeError):
    pass


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def free_port(also_free_offset: int | None = None) -> int:
    """A free loopback port (and, optionally, port+offset free too: SeaweedFS's gRPC ports)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if also_free_offset is None:
            return port
        if port + also_free_offset < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + also_free_offset))
                    return port
                except OSError:
                    continue
    raise ServiceFailed("no free loopback port found")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


EXTRA = "embedded"  # setup.cfg's extra that brings every embedded service


class EmbeddedService:
    name = ""
    env_var = ""
    # Modules of the ``embedded`` extra this service runs from (imported only when it starts,
    # so a production install without the extra never needs them).
    requires: tuple[str, ...] = ()
    stop_signal = signal.SIGTERM
    start_timeout = 60.0
    stop_timeout = 20.0  # after this the process group is killed

    def __init__(self, data_dir: Path, log_dir: Path):
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None
        self.port = 0

    def missing(self) -> list[str]:
        """What this service needs that is not installed (names for the user to read)."""
        return [module for module in self.requires if not _installed(module)]

    # subclasses: command() -> argv, ready() -> bool, exports() -> env, describe() -> str
    def prepare(self) -> None:
        """One-time set-up of the data directory (before the process starts)."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return port_open(self.port)

    def after_start(self) -> None:
        """Provisioning once the service answers (databases, roles...)."""

    def exports(self) -> dict[str, str]:
        raise NotImplementedError

    def describe(self) -> str:
        return f"127.0.0.1:{self.port}  data: {self.data_dir}"

    def popen_kwargs(self) -> dict:
        return {}

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        log = open(self.log_dir / f"{self.name}.log", "ab")
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, **self.popen_kwargs(),
        )
        log.close()
        self._wait(self.ready)
        self.after_start()

    def _wait(self, check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceFailed(f"{self.name} exited with {self.process.returncode}; see {self.log_dir / (self.name + '.log')}")
            try:
                if check():
                    return
            except Exception:  # noqa: BLE001 - not ready yet
                pass
            time.sleep(0.2)
        self.stop()
        raise ServiceFailed(f"{self.name} did not answer within {self.start_timeout:.0f} s; see {self.log_dir / (self.name + '.log')}")

    def stop(self, timeout: float | None = None) -> None:
        timeout = self.stop_timeout if timeout is None else timeout
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, self.stop_signal)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
