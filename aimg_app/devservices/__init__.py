"""The embedded-services launcher: real servers on free loopback ports, data under one folder.

Only services whose ``AIMG_*`` URL is not configured are started. Each runs as a child
process (its own process group), is waited for until it answers, and is stopped on exit.
The URLs of what runs are written to ``<data dir>/services.json`` so that other commands
on the same machine (``aimg worker``, a second shell) find them.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Mapping

from .mongo import MongoService
from .postgres import PostgresService
from .redis import RedisService
from .seaweedfs import SeaweedService
from .service import EmbeddedService, ServiceFailed
from .smtp import SmtpService

ALL_SERVICES: tuple[type[EmbeddedService], ...] = (MongoService, PostgresService, RedisService, SeaweedService, SmtpService)


class EmbeddedServices:
    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None, only: set[str] | None = None,
                 say: Callable[[str], None] = print):
        self.data_dir = Path(data_dir).resolve()
        self.env = dict(os.environ if env is None else env)
        self.only = only
        self.say = say
        self.running: list[EmbeddedService] = []
        self.exports: dict[str, str] = {}

    def _wanted(self) -> list[EmbeddedService]:
        wanted = []
        for cls in ALL_SERVICES:
            if self.only is not None and cls.name not in self.only:
                continue
            if self.env.get(cls.env_var):
                self.say(f"  {cls.name:<10} configured: {cls.env_var} (not started)")
                continue
            wanted.append(cls(self.data_dir / cls.name, self.data_dir / "logs"))
        return wanted

    def start(self) -> dict[str, str]:
        """Start what is not configured (in parallel); returns the environment to export."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        services = self._wanted()
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
            futures = {pool.submit(svc.start): svc for svc in services}
            for future, svc in futures.items():
                try:
                    future.result()
                    self.running.append(svc)
                except Exception as exc:  # noqa: BLE001 - reported, then everything is stopped
                    errors.append(f"{svc.name}: {exc}")
        if errors:
            self.stop()
            raise ServiceFailed("embedded services failed to start:\n  " + "\n  ".join(errors))
        for svc in self.running:
            self.exports.update(svc.exports())
            self.say(f"  {svc.name:<10} {svc.describe()}")
        if self.running:  # a process that started nothing must not hide the one that did
            self._write_state()
        return dict(self.exports)

    def _write_state(self) -> None:
        state = {"pid": os.getpid(), "env": self.exports}
        path = self.data_dir / "services.json"
        path.write_text(json.dumps(state, indent=2))
        path.chmod(0o600)

    def stop(self) -> None:
        """Stop everything in parallel (SeaweedFS alone takes seconds to drain)."""

        def stop_one(svc: EmbeddedService) -> None:
            try:
                svc.stop()
            except Exception as exc:  # noqa: BLE001
                self.say(f"  {svc.name}: stop failed: {exc}")

        if self.running:
            with ThreadPoolExecutor(max_workers=len(self.running)) as pool:
                list(pool.map(stop_one, self.running))
        self.running.clear()
        state = self.data_dir / "services.json"
        try:
            if json.loads(state.read_text()).get("pid") == os.getpid():
                state.unlink()
        except (OSError, ValueError):
            pass

    def __enter__(self) -> "EmbeddedServices":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def running_services_env(data_dir: Path) -> dict[str, str]:
    """The URLs of embedded services another ``aimg`` process on this machine started."""
    path = Path(data_dir) / "services.json"
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return dict(state.get("env", {}))


__all__ = ["EmbeddedServices", "ServiceFailed", "running_services_env", "ALL_SERVICES"]
