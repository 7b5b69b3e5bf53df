"""JSON log lines on stderr, each carrying the request id of the request being served.

One configuration (``logging_config``) for the API, the workers, the scheduler and
gunicorn's own error and access logs (``deploy/gunicorn.conf.py`` passes it to gunicorn).
"""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("aimg_request_id", default=None)

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "requestId": getattr(record, "request_id", None) or request_id_var.get(),
        }
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            entry.update(_access_fields(record.args))
        for key, value in vars(record).items():
            if key not in _RESERVED and key != "request_id" and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _access_fields(atoms: dict) -> dict:
    """gunicorn's access-log atoms as named fields (the request id is the one the app answered with)."""
    fields = {"method": atoms.get("m"), "path": atoms.get("U"), "status": atoms.get("s"),
              "durationMs": round(int(atoms.get("D") or 0) / 1000, 1), "remote": atoms.get("h"),
              "userAgent": atoms.get("a"), "bytes": atoms.get("B")}
    rid = atoms.get("{x-request-id}o")
    if rid and rid != "-":
        fields["requestId"] = rid
    return fields


def logging_config(level: str = "INFO") -> dict:
    """The ``logging.config.dictConfig`` of every AIMG process: one JSON handler on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            # gunicorn's loggers keep their own handlers unless told otherwise: ours, once.
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
            # werkzeug's own access lines are replaced by aimg.request lines (with the request id).
            "werkzeug": {"level": "WARNING"},
        },
    }


def configure_logging(level: str = "INFO") -> None:
    """Idempotent: one JSON handler on the root logger."""
    # The handlers of ``logging_config``, added beside any already there (a test runner's).
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
