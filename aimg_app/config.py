"""Settings: embedded defaults, then an optional TOML file, then ``AIMG_*`` environment variables.

Everything an operator sets is named here, once. Secrets come only from the environment
(or the file the environment points at), never from code.
"""
from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class Domain:
    """One site served by this deployment (SPEC-GAPS 1)."""

    identifier: str  # e.g. "aimg.example"; recorded on every document that belongs to the site
    display_name: str  # e.g. "AIMG"; used in the default log serviceName and in mails
    environment: str  # e.g. "prod", "stage", "dev"
    origins: tuple[str, ...] = ()  # allowed front-end origins (OAuth redirects, magic links)
    hosts: tuple[str, ...] = ()  # API host names that select this domain
    magic_link_url: str | None = None  # front-end page the OTP mail links to (None: the first origin)
    magic_links: bool = True  # whether OTP mails carry the magic link

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> "Domain":
        identifier = str(raw["identifier"]).strip().lower()
        return cls(
            identifier=identifier,
            display_name=str(raw.get("displayName") or raw.get("display_name") or identifier),
            environment=str(raw.get("environment") or "prod"),
            origins=tuple(str(o).rstrip("/") for o in raw.get("origins", ())),
            hosts=tuple(str(h).lower() for h in raw.get("hosts", ())),
            magic_link_url=raw.get("magicLinkUrl") or raw.get("magic_link_url"),
            magic_links=bool(raw.get("magicLinks", raw.get("magic_links", True))),
        )


DEFAULT_DOMAIN = Domain(
    identifier="localhost",
    display_name="AIMG",
    environment="dev",
    origins=("http://localhost:3000", "http://127.0.0.1:3000"),
    hosts=("localhost", "127.0.0.1"),
)


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(".aimg-data").resolve())
    # Service URLs: empty means "not configured", and the embedded launcher starts one.
    mongodb_uri: str = ""
    postgres_dsn: str = ""
    redis_url: str = ""
    seaweedfs_url: str = ""  # the SeaweedFS master, e.g. http://127.0.0.1:9333
    smtp_url: str = ""  # smtp://host:port
    mail_from: str = ""  # sender of outgoing mail; no-reply@<default domain> when empty
    # Keys OTP hashes, signs checkout links, encrypts stored vendor credentials; a key file under the data
    # dir is created and used when empty (set it explicitly when several hosts serve the API).
    secret_key: str = ""
    comfyui_urls: tuple[str, ...] = ()
    # generation (RQ jobs on ComfyUI)
    generation_job_timeout_s: int = 900  # RQ's hard limit for one job
    comfyui_prompt_timeout_s: float = 600.0  # one prompt on ComfyUI; then it is interrupted and failed
    comfyui_max_attempts: int = 3  # servers tried for one run when a server fails
    comfyui_health_ttl_s: float = 10.0  # how long a /system_stats answer (or failure) is trusted
    comfyui_http_timeout_s: float = 30.0
    generation_lease_s: float = 30.0  # a running job renews its lease; a lapsed lease is requeued
    generation_max_runs: int = 3  # a run whose worker died this many times fails
    # scheduled jobs (``aimg scheduler``: one leader among any number of them)
    billing_expire_interval_s: int = 60  # expire lapsed PRO tiers this often
    billing_poll_interval_s: int = 900  # read subscribers of processors without webhooks this often
    scheduler_lock_s: float = 15.0  # a leader that stops renewing for this long is replaced
    # pgQuery: a login role that can only read; a write role only when explicitly enabled.
    pgquery_dsn: str = ""
    pgquery_write_dsn: str = ""
    pgquery_allow_write: bool = False
    pgquery_timeout_s: float = 10.0
    pgquery_max_rows: int = 1000
    # name -> key; compared in constant time, the name is what gets recorded
    admin_keys: dict[str, str] = field(default_factory=dict)
    domains: tuple[Domain, ...] = (DEFAULT_DOMAIN,)
    trusted_proxy_count: int = 0  # X-Forwarded-* honoured only from this many trusted proxies
    max_request_bytes: int = 40 * 1024 * 1024
    max_file_bytes: int = 32 * 1024 * 1024
    legacy_file_server_url: str = ""  # getFile?fs=true falls back to GET {url}/{id}
    public_base_url: str = ""  # used to build FileMetadata.publicUrl; defaults to the request's host
    ingest_logs_rate_limit: str = "120 per minute"
    migrate_on_start: bool = True
    disabled_plugins: tuple[str, ...] = ()
    plugin_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    log_level: str = "INFO"
    otp_ttl_hours: int = 24
    otp_max_attempts: int = 5
    otp_rate_limit_per_email: str = "5 per hour"
    otp_rate_limit_per_client: str = "20 per hour"
    # getMyCreations: non-premium users browse their newest N Items (0: no cap); proLimitHit says when
    free_library_items: int = 1000

    @property
    def default_domain(self) -> Domain:
        return self.domains[0]

    def domain_for_host(self, host: str | None) -> Domain:
        """The domain whose API hosts include ``host`` (port ignored); else the default one."""
        name = (host or "").split(":")[0].strip().lower()
        for domain in self.domains:
            if name and (name in domain.hosts or name == domain.identifier or name == f"api.{domain.identifier}"):
                return domain
        return self.default_domain

    def domain_by_identifier(self, identifier: str) -> Domain | None:
        return next((d for d in self.domains if d.identifier == identifier), None)

    def plugin_config(self, name: str) -> dict[str, Any]:
        return dict(self.plugin_settings.get(name, {}))


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def parse_admin_keys(raw: str) -> dict[str, str]:
    """``name:key,name:key`` -> {name: key}. Empty keys are ignored (they would match nothing safely)."""
    keys: dict[str, str] = {}
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, key = part.partition(":")
        if not sep or not name.strip() or not key.strip():
            raise ValueError("AIMG_ADMIN_KEYS must look like 'name:key,name:key'")
        keys[name.strip()] = key.strip()
    return keys


def _domains(raw: Any) -> tuple[Domain, ...]:
    items = json.loads(raw) if isinstance(raw, str) else raw
    domains = tuple(Domain.from_mapping(item) for item in items)
    if not domains:
        raise ValueError("at least one domain must be configured")
    return domains


# environment variable -> (settings attribute, parser)
_ENV: dict[str, tuple[str, Any]] = {
    "AIMG_DATA_DIR": ("data_dir", lambda v: Path(v).resolve()),
    "AIMG_MONGODB_URI": ("mongodb_uri", str),
    "AIMG_POSTGRES_DSN": ("postgres_dsn", str),
    "AIMG_REDIS_URL": ("redis_url", str),
    "AIMG_SEAWEEDFS_URL": ("seaweedfs_url", lambda v: v.rstrip("/")),
    "AIMG_SMTP_URL": ("smtp_url", str),
    "AIMG_MAIL_FROM": ("mail_from", str),
    "AIMG_SECRET_KEY": ("secret_key", str),
    "AIMG_COMFYUI_URLS": ("comfyui_urls", lambda v: tuple(u.strip().rstrip("/") for u in v.split(",") if u.strip())),
    "AIMG_GENERATION_JOB_TIMEOUT_S": ("generation_job_timeout_s", int),
    "AIMG_COMFYUI_PROMPT_TIMEOUT_S": ("comfyui_prompt_timeout_s", float),
    "AIMG_COMFYUI_MAX_ATTEMPTS": ("comfyui_max_attempts", int),
    "AIMG_COMFYUI_HEALTH_TTL_S": ("comfyui_health_ttl_s", float),
    "AIMG_COMFYUI_HTTP_TIMEOUT_S": ("comfyui_http_timeout_s", float),
    "AIMG_GENERATION_LEASE_S": ("generation_lease_s", float),
    "AIMG_GENERATION_MAX_RUNS": ("generation_max_runs", int),
    "AIMG_BILLING_EXPIRE_INTERVAL_S": ("billing_expire_interval_s", int),
    "AIMG_BILLING_POLL_INTERVAL_S": ("billing_poll_interval_s", int),
    "AIMG_SCHEDULER_LOCK_S": ("scheduler_lock_s", float),
    "AIMG_PGQUERY_DSN": ("pgquery_dsn", str),
    "AIMG_PGQUERY_WRITE_DSN": ("pgquery_write_dsn", str),
    "AIMG_PGQUERY_ALLOW_WRITE": ("pgquery_allow_write", _bool),
    "AIMG_PGQUERY_TIMEOUT_S": ("pgquery_timeout_s", float),
    "AIMG_PGQUERY_MAX_ROWS": ("pgquery_max_rows", int),
    "AIMG_ADMIN_KEYS": ("admin_keys", parse_admin_keys),
    "AIMG_DOMAINS": ("domains", _domains),
    "AIMG_TRUSTED_PROXY_COUNT": ("trusted_proxy_count", int),
    "AIMG_MAX_REQUEST_BYTES": ("max_request_bytes", int),
    "AIMG_MAX_FILE_BYTES": ("max_file_bytes", int),
    "AIMG_LEGACY_FILE_SERVER_URL": ("legacy_file_server_url", lambda v: v.rstrip("/")),
    "AIMG_PUBLIC_BASE_URL": ("public_base_url", lambda v: v.rstrip("/")),
    "AIMG_INGEST_LOGS_RATE_LIMIT": ("ingest_logs_rate_limit", str),
    "AIMG_MIGRATE_ON_START": ("migrate_on_start", _bool),
    "AIMG_DISABLED_PLUGINS": ("disabled_plugins", lambda v: tuple(p.strip() for p in v.split(",") if p.strip())),
    "AIMG_PLUGIN_SETTINGS": ("plugin_settings", json.loads),
    "AIMG_LOG_LEVEL": ("log_level", str.upper),
    "AIMG_OTP_RATE_LIMIT_PER_EMAIL": ("otp_rate_limit_per_email", str),
    "AIMG_OTP_RATE_LIMIT_PER_CLIENT": ("otp_rate_limit_per_client", str),
    "AIMG_FREE_LIBRARY_ITEMS": ("free_library_items", int),
}

# keys of the TOML file -> settings attribute (the file uses the attribute names)
_FILE_PARSERS: dict[str, Any] = {"domains": _domains, "data_dir": lambda v: Path(v).resolve()}


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings: defaults, ``AIMG_CONFIG_FILE`` (TOML), environment, then ``overrides``."""
    env = os.environ if env is None else env
    settings = Settings()
    config_file = env.get("AIMG_CONFIG_FILE")
    if config_file:
        with open(config_file, "rb") as fh:
            data = tomllib.load(fh)
        if "plugins" in data:
            data["plugin_settings"] = data.pop("plugins")
        for key, value in data.items():
            if not hasattr(settings, key):
                raise ValueError(f"unknown setting {key!r} in {config_file}")
            parser = _FILE_PARSERS.get(key)
            value = parser(value) if parser else value
            setattr(settings, key, tuple(value) if isinstance(value, list) else value)
    for name, (attr, parser) in _ENV.items():
        raw = env.get(name)
        if raw is not None and raw != "":
            try:
                setattr(settings, attr, parser(raw))
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"invalid {name}: {exc}") from None
    for key, value in overrides.items():
        if not hasattr(settings, key):
            raise ValueError(f"unknown setting {key!r}")
        setattr(settings, key, value)
    return settings
