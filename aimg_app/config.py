"""Settings: embedded defaults, then an optional TOML file, then ``AIMG_*`` environment variables.

Everything an operator sets is named here, once. Secrets come only from the environment
(or the file the environment points at), never from code.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, get_origin, get_type_hints


@dataclass(frozen=True)
class Domain:
    """One site served by this deployment: its users, sessions, plans, tiers, gift cards and Items
    are its own (the same email on two domains is two users)."""

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
    comfyui_max_attempts: int = 3  # submissions of one run to a server before it fails (a server that fails mid-run counts)
    comfyui_health_ttl_s: float = 10.0  # how long a /system_stats answer (or failure) is trusted
    comfyui_http_timeout_s: float = 30.0
    generation_lease_s: float = 30.0  # a running job renews its lease; a lapsed lease is requeued
    generation_max_runs: int = 3  # a run whose worker died this many times fails
    generation_server_wait_s: float = 600.0  # a run waits this long for a healthy ComfyUI server, then fails
    generation_prefetch: int = 1  # runs a worker keeps queued on ComfyUI beyond the one running
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
    ingest_logs_rate_limit: str = "120 per minute"  # per signed-in user, else per existing session
    ingest_logs_rate_limit_per_client: str = "600 per minute"  # per client address, whatever the session
    # password sign-in attempts (OWASP ASVS V6.3), counted before the check; a success clears
    # the account's count; past either limit, 429 until the window has room
    login_failures_per_account: str = "10 per 15 minutes"
    login_failures_per_client: str = "200 per 15 minutes"
    admin_key_failures_per_client: str = "50 per 15 minutes"  # wrong X-Administration-Key values
    card_email_rate_limit_per_email: str = "5 per hour"  # payWithCardEmail mails to one address
    gift_card_attempts_per_user: str = "20 per hour"  # redeemGiftCard tries, counted before the check
    events_streams_per_user: int = 5  # open GET /events streams per user (or anonymous session), then 429
    events_streams_per_client: int = 20  # open GET /events streams per client address, then 429
    events_stream_seconds: float = 300.0  # a GET /events stream ends then; the browser reconnects and resumes
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
        name = (host or "").split(":")[0].strip().lower().rstrip(".")  # "api.site.example." is the same host
        for domain in self.domains:
            if name and (name in domain.hosts or name == domain.identifier or name == f"api.{domain.identifier}"):
                return domain
        return self.default_domain

    def domain_by_identifier(self, identifier: str) -> Domain | None:
        return next((d for d in self.domains if d.identifier == identifier), None)

    def plugin_config(self, name: str) -> dict[str, Any]:
        return dict(self.plugin_settings.get(name, {}))


def parse_admin_keys(raw: Any) -> dict[str, str]:
    """``name:key,name:key`` (or a TOML table) -> {name: key}."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    keys: dict[str, str] = {}
    for part in str(raw).split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, key = part.partition(":")
        if not sep or not name.strip() or not key.strip():
            raise ValueError("must look like 'name:key,name:key'")
        keys[name.strip()] = key.strip()
    return keys


def _domains(raw: Any) -> tuple[Domain, ...]:
    items = json.loads(raw) if isinstance(raw, str) else raw
    domains = tuple(Domain.from_mapping(item) for item in items)
    if not domains:
        raise ValueError("at least one domain must be configured")
    return domains


def _json_table(raw: Any) -> dict:
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object / TOML table")
    return value


# What each setting means, for the README's table (``aimg settings --write-readme``); a test
# fails when a setting has no entry here or the README's table is not the generated one.
DOCS: dict[str, str] = {
    "data_dir": "where embedded services keep their data, and where `aimg` commands find their registry",
    "mongodb_uri": "MongoDB, with the database name (`mongodb://host/aimg`)",
    "postgres_dsn": "PostgreSQL of the application (owner of its tables)",
    "redis_url": "Redis (queues, rate limits, the scheduler's lock)",
    "seaweedfs_url": "the SeaweedFS master (`http://host:9333`)",
    "smtp_url": "`smtp://host:port` (`smtps://user:password@host:port`; `?starttls=true`)",
    "mail_from": "sender of outgoing mail (empty: `no-reply@<default domain>`)",
    "secret_key": "keys OTP hashes, signs checkout links, encrypts stored vendor cookies (empty: a key file under "
                  "the data dir; set it when several hosts serve the API)",
    "comfyui_urls": "comma-separated ComfyUI servers of the workers' pool (none: jobs wait in their queues)",
    "generation_job_timeout_s": "RQ's hard limit for one generation job",
    "comfyui_prompt_timeout_s": "one prompt on ComfyUI; past it the prompt is interrupted and its Items fail",
    "comfyui_max_attempts": "submissions of one run to a server before it fails (a server that fails mid-run counts)",
    "comfyui_health_ttl_s": "how long a server's `/system_stats` answer, or its failure, is trusted",
    "comfyui_http_timeout_s": "HTTP timeout towards ComfyUI",
    "generation_lease_s": "a running job renews a lease this long; a lapsed lease means its worker died and the run "
                          "is queued again",
    "generation_max_runs": "a run whose worker died this many times fails",
    "billing_expire_interval_s": "`aimg scheduler`: expire lapsed PRO tiers this often",
    "billing_poll_interval_s": "`aimg scheduler`: read the subscribers of processors without webhooks (Boosty, the "
                               "whitelist) this often",
    "scheduler_lock_s": "a leading `aimg scheduler` that stops renewing its lock for this long is replaced",
    "pgquery_dsn": "a login role that can only read, used by `pgQuery` (the embedded launcher provisions "
                   "`aimg_query_reader`)",
    "pgquery_write_dsn": "a write role for `pgQuery`, used only with `AIMG_PGQUERY_ALLOW_WRITE`",
    "pgquery_allow_write": "let `pgQuery` use the write role",
    "pgquery_timeout_s": "`pgQuery` cancellation timeout",
    "pgquery_max_rows": "`pgQuery` row cap",
    "admin_keys": "personal admin keys, `name:key,name:key` (a table in the TOML file)",
    "domains": "JSON list of sites: `[{\"identifier\", \"displayName\", \"environment\", \"origins\": [...], "
               "\"hosts\": [...]}]`; the first is the default",
    "trusted_proxy_count": "how many reverse proxies' `X-Forwarded-*` to trust",
    "max_request_bytes": "request body limit",
    "max_file_bytes": "uploaded file limit",
    "legacy_file_server_url": "the old file server `getFile?fs=true` falls back to (`GET {url}/{id}`)",
    "public_base_url": "base of `FileMetadata.publicUrl` and OAuth callbacks (empty: the request's host)",
    "ingest_logs_rate_limit": "`ingestLogs` limit per session",
    "migrate_on_start": "run migrations when the app starts",
    "disabled_plugins": "comma-separated plugin names not to load",
    "plugin_settings": "JSON `{plugin: {setting: value}}` (or `[plugins.<name>]` tables in the TOML file)",
    "log_level": "DEBUG, INFO, WARNING, ERROR",
    "otp_ttl_hours": "how long a one-time password stays valid",
    "otp_max_attempts": "wrong guesses before a one-time password is void",
    "otp_rate_limit_per_email": "`requestOTP` limit per email address",
    "otp_rate_limit_per_client": "`requestOTP` limit per client",
    "ingest_logs_rate_limit_per_client": "`ingestLogs` limit per client address, whatever the session",
    "login_failures_per_account": "password sign-in attempts per account (counted before the check; a success "
                                  "clears them), then 429",
    "login_failures_per_client": "password sign-in attempts per client address, then 429",
    "admin_key_failures_per_client": "wrong `X-Administration-Key` values per client address, then 429",
    "card_email_rate_limit_per_email": "`payWithCardEmail` mails to one address",
    "gift_card_attempts_per_user": "`redeemGiftCard` attempts per user (counted before the code is looked up)",
    "events_streams_per_user": "open `GET /events` streams per user (or anonymous session), then 429",
    "events_streams_per_client": "open `GET /events` streams per client address, then 429",
    "events_stream_seconds": "a `GET /events` stream ends after this long (the browser reconnects and resumes "
                             "with `Last-Event-ID`): below a proxy's idle timeout, and no thread held for ever",
    "generation_server_wait_s": "a run waits this long for a healthy ComfyUI server (status \"waiting for a "
                                "generation server\"), then fails",
    "generation_prefetch": "runs a worker keeps queued on its ComfyUI server beyond the one running",
    "free_library_items": "non-premium users browse their newest N Items in `getMyCreations` (0: no cap)",
}

# Where the type alone does not say how a value is read.
_PARSERS: dict[str, Callable[[Any], Any]] = {
    "admin_keys": parse_admin_keys, "domains": _domains, "plugin_settings": _json_table,
}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def env_name(name: str) -> str:
    return "AIMG_" + name.upper()


def setting_types() -> dict[str, Any]:
    """Each setting's name and type, in declaration order."""
    hints = get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings)}


def env_names() -> set[str]:
    """Every environment variable the application reads."""
    return {env_name(name) for name in setting_types()} | {"AIMG_CONFIG_FILE"}


def _coerce(name: str, kind: Any, raw: Any) -> Any:
    """One value from the environment (a string) or the TOML file (typed), as the setting's type."""
    if name in _PARSERS:
        return _PARSERS[name](raw)
    origin = get_origin(kind)
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise ValueError(f"expected true or false, got {raw!r}")
    if kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            try:
                return int(raw.strip())
            except ValueError:
                pass
        raise ValueError(f"expected a whole number, got {raw!r}")
    if kind is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw.strip())
            except ValueError:
                pass
        raise ValueError(f"expected a number, got {raw!r}")
    if kind is Path:
        if not isinstance(raw, str) or not raw:
            raise ValueError(f"expected a path, got {raw!r}")
        return Path(raw).expanduser().resolve()
    if kind is str:
        if not isinstance(raw, str):
            raise ValueError(f"expected text, got {raw!r}")
        value = raw.strip()
        return value.rstrip("/") if name.endswith("_url") else value
    if origin is tuple:
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"expected a comma-separated list, got {raw!r}")
        items = [i.strip() for i in items if i.strip()]
        return tuple(i.rstrip("/") for i in items) if name.endswith("_urls") else tuple(items)
    raise ValueError(f"no parser for {kind!r}")


def _check(name: str, value: Any) -> None:
    """Ranges no type expresses: durations and sizes are positive, counts not negative."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if name.endswith(("_s", "_bytes", "_hours", "_attempts", "_max_runs", "_max_rows")) and value <= 0:
            raise ValueError(f"must be greater than 0, got {value!r}")
        if value < 0:
            raise ValueError(f"must not be negative, got {value!r}")
    if name == "log_level" and value not in _LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(sorted(_LOG_LEVELS))}, got {value!r}")
    if name.endswith("_rate_limit") or name.startswith("otp_rate_limit"):
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"expected a rate such as '5 per hour', got {value!r}") from None


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings in one pass: defaults, ``AIMG_CONFIG_FILE`` (TOML), the ``AIMG_*``
    environment, then ``overrides`` (Python values, unchecked). Every value of the file and
    of the environment is parsed and checked alike; all problems are reported at once."""
    env = os.environ if env is None else env
    types = setting_types()
    raw: dict[str, tuple[str, Any]] = {}  # name -> (where it came from, value)
    errors: list[str] = []
    config_file = env.get("AIMG_CONFIG_FILE")
    if config_file:
        with open(config_file, "rb") as fh:
            data = tomllib.load(fh)
        if "plugins" in data:
            data["plugin_settings"] = data.pop("plugins")
        for key, value in data.items():
            if key not in types:
                errors.append(f"unknown setting {key!r} in {config_file}")
            else:
                raw[key] = (f"{key} in {config_file}", value)
    for name in types:
        value = env.get(env_name(name))
        if value is not None and value != "":
            raw[name] = (env_name(name), value)
    values: dict[str, Any] = {}
    for name, (source, value) in raw.items():
        try:
            values[name] = _coerce(name, types[name], value)
            if name == "log_level":
                values[name] = values[name].upper()
            _check(name, values[name])
        except (ValueError, TypeError, KeyError) as exc:
            errors.append(f"invalid {source}: {exc}")
    if errors:
        raise ValueError("; ".join(errors))
    settings = Settings(**values)
    for key, value in overrides.items():
        if key not in types:
            raise ValueError(f"unknown setting {key!r}")
        setattr(settings, key, value)
    return settings


def _default_text(name: str, value: Any) -> str:
    if name == "data_dir":
        return "`./.aimg-data`"
    if name == "domains":
        return "`localhost` (dev)"
    if value in ("", (), {}, None):
        return ""
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, tuple):
        return "`" + ",".join(map(str, value)) + "`"
    return f"`{value}`"


def settings_table() -> str:
    """The README's configuration table, from the settings themselves."""
    defaults = Settings()
    rows = ["| variable | TOML key | default | meaning |", "|---|---|---|---|"]
    for name in setting_types():
        rows.append(f"| `{env_name(name)}` | `{name}` | {_default_text(name, getattr(defaults, name))} "
                    f"| {DOCS.get(name, '')} |")
    return "\n".join(rows) + "\n"
