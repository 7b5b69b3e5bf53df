"""The process's handles on the outside world, built from the settings, opened lazily.

One ``Resources`` per application (and per worker process). Nothing here holds state
another process needs: pools and clients only.
"""
from __future__ import annotations

import os
import threading
from functools import cached_property
from typing import Any

import mongoengine
import pluggy
import redis
from psycopg_pool import ConnectionPool

from .config import Settings
from .errors import ServiceUnavailable
from .plugin_api import (AffiliateAdProvider, GenerationModel, LoginProvider, PaymentProcessor, ReportQueue,
                         WorkflowTemplate)
from .plugin_api.manager import build_plugin_manager
from .services.pgquery import make_query_pool
from .storage.seaweedfs import SeaweedStore


class Resources:
    def __init__(self, settings: Settings, extra_plugins=()):
        self.settings = settings
        self.plugins: pluggy.PluginManager = build_plugin_manager(settings.disabled_plugins, extra_plugins)
        self._lock = threading.Lock()
        self._mongo_connected = False

    # -- databases -----------------------------------------------------------------------
    def connect_mongo(self) -> None:
        """(Re)bind mongoengine's default alias to this deployment's database."""
        with self._lock:
            if self._mongo_connected:
                return
            if not self.settings.mongodb_uri:
                raise ServiceUnavailable("MongoDB is not configured (AIMG_MONGODB_URI).")
            mongoengine.disconnect()
            mongoengine.connect(host=self.settings.mongodb_uri, uuidRepresentation="standard", tz_aware=False,
                                serverSelectionTimeoutMS=5000)
            from . import identity_cache

            identity_cache.bind(self.redis if self.settings.redis_url else None)  # the tokens of this database
            self._mongo_connected = True

    @cached_property
    def pg(self) -> ConnectionPool:
        if not self.settings.postgres_dsn:
            raise ServiceUnavailable("PostgreSQL is not configured (AIMG_POSTGRES_DSN).")
        pool = ConnectionPool(self.settings.postgres_dsn, min_size=1, max_size=10, open=False, timeout=10,
                              kwargs={"application_name": "aimg"})
        pool.open(wait=False)
        return pool

    @cached_property
    def query_pool(self) -> ConnectionPool:
        """The pool pgQuery uses: the read-only role, or the write role when the operator allows it."""
        s = self.settings
        dsn = s.pgquery_write_dsn if s.pgquery_allow_write and s.pgquery_write_dsn else s.pgquery_dsn
        if not dsn:
            raise ServiceUnavailable("pgQuery is not configured (AIMG_PGQUERY_DSN).")
        pool = make_query_pool(dsn, s.pgquery_timeout_s)
        pool.open(wait=False)
        return pool

    @property
    def pgquery_writes(self) -> bool:
        return bool(self.settings.pgquery_allow_write and self.settings.pgquery_write_dsn)

    @cached_property
    def redis(self) -> redis.Redis:
        if not self.settings.redis_url:
            raise ServiceUnavailable("Redis is not configured (AIMG_REDIS_URL).")
        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=5, socket_connect_timeout=5)

    @cached_property
    def files(self) -> SeaweedStore:
        if not self.settings.seaweedfs_url:
            raise ServiceUnavailable("The file store is not configured (AIMG_SEAWEEDFS_URL).")
        return SeaweedStore(self.settings.seaweedfs_url)

    @cached_property
    def rate_limiter(self):
        """A moving-window limiter on Redis, shared by every API process (fails closed: Redis errors raise)."""
        from limits import storage, strategies

        if not self.settings.redis_url:
            raise ServiceUnavailable("Redis is not configured (AIMG_REDIS_URL).")
        return strategies.MovingWindowRateLimiter(storage.RedisStorage(self.settings.redis_url))

    # -- plugins -------------------------------------------------------------------------
    def _collect(self, hook: str, kind: str) -> dict[str, Any]:
        """Every class a ``register_*`` hook returns, instantiated once with its settings,
        by identifier, in plugin registration order. One rule for every family: an
        identifier is unique, and a duplicate stops the start (``create_app`` collects
        every family), never a request."""
        found: dict[str, Any] = {}
        # pluggy calls the most recently registered plugin first; reversed = registration order
        for result in reversed(getattr(self.plugins.hook, hook)()):
            for cls in result or []:
                if cls.identifier in found:
                    raise ValueError(f"two plugins register the {kind} {cls.identifier!r}")
                found[cls.identifier] = cls(self.settings.plugin_config(cls.identifier))
        return found

    def collect_plugins(self) -> None:
        """Instantiate every plugin family now (at start-up), so a duplicate or a broken
        constructor is found before the first request."""
        for family in ("affiliate_ad_providers", "login_providers", "payment_processors", "workflow_templates",
                       "generation_models", "report_queues"):
            getattr(self, family)

    @cached_property
    def affiliate_ad_providers(self) -> list[AffiliateAdProvider]:
        return list(self._collect("register_affiliate_ad_providers", "affiliate-ad provider").values())

    @cached_property
    def login_providers(self) -> dict[str, LoginProvider]:
        return self._collect("register_login_providers", "login provider")

    @cached_property
    def payment_processors(self) -> dict[str, PaymentProcessor]:
        """identifier -> processor instance, from every ``register_payment_processors``."""
        return self._collect("register_payment_processors", "payment processor")

    @cached_property
    def secret_key(self) -> bytes:
        """The deployment's secret (``AIMG_SECRET_KEY``), else a random key kept under the data dir."""
        if self.settings.secret_key:
            return self.settings.secret_key.encode()
        import secrets

        path = self.settings.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
            try:
                os.link(tmp, path)  # first writer wins; every process then reads the same key
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        return path.read_text().strip().encode()

    @cached_property
    def workflow_templates(self) -> dict[str, WorkflowTemplate]:
        """Every workflow template of the plugins, by identifier, in plugin order."""
        return self._collect("register_workflow_templates", "workflow template")

    @cached_property
    def generation_models(self) -> dict[str, GenerationModel]:
        """Every legacy generation model of the plugins, by identifier, in plugin order."""
        return self._collect("register_models", "model")

    @cached_property
    def report_queues(self) -> list[ReportQueue]:
        return list(self._collect("register_report_queues", "report queue").values())

    # -- lifecycle -----------------------------------------------------------------------
    def migrate(self) -> dict[str, list[str]]:
        from migrations import migrate_mongo, migrate_postgres

        self.connect_mongo()
        self.pg.wait(timeout=30)
        return {"postgres": migrate_postgres(self.pg), "mongo": migrate_mongo()}

    def close(self) -> None:
        for name in ("pg", "query_pool"):
            pool = self.__dict__.pop(name, None)
            if pool is not None:
                pool.close()
        client = self.__dict__.pop("redis", None)
        if client is not None:
            client.close()
        if self._mongo_connected:
            mongoengine.disconnect()
            self._mongo_connected = False

