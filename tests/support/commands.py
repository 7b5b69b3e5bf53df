"""The database commands a piece of code sends, counted: MongoDB through pymongo's command
monitoring, PostgreSQL through psycopg's cursor (each statement). A count does not depend on
the machine, so a test may hold it to a bound.

``install()`` must run before the application connects: pymongo gives a registered listener
to the clients created after it.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Iterator

import pymongo.monitoring

WRITES = frozenset({"insert", "update", "delete", "findAndModify"})


@dataclass
class Commands:
    mongo: list[tuple[str, str]] = field(default_factory=list)  # (command, collection)
    postgres: list[str] = field(default_factory=list)  # the statements' first words

    @property
    def mongo_writes(self) -> list[tuple[str, str]]:
        return [c for c in self.mongo if c[0] in WRITES]


class _Listener(pymongo.monitoring.CommandListener):
    """Records the commands started on the thread that is counting (others run on)."""

    def __init__(self):
        self.active: dict[int, Commands] = {}

    def started(self, event):
        found = self.active.get(threading.get_ident())
        if found is not None:
            found.mongo.append((event.command_name, str(event.command.get(event.command_name, ""))))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


_LISTENER: _Listener | None = None
_LOCK = threading.Lock()


def install() -> None:
    global _LISTENER
    with _LOCK:
        if _LISTENER is None:
            _LISTENER = _Listener()
            pymongo.monitoring.register(_LISTENER)


@contextlib.contextmanager
def _counting_postgres(found: Commands) -> Iterator[None]:
    """psycopg has no command monitoring: the cursor's execute methods are wrapped meanwhile."""
    import psycopg

    thread = threading.get_ident()
    originals = {(cls, name): getattr(cls, name) for cls in (psycopg.Cursor, psycopg.ServerCursor)
                 for name in ("execute", "executemany", "copy") if name in vars(cls)}

    def wrap(original):
        def counted(self, query, *args, **kwargs):
            if threading.get_ident() == thread:
                text = query.as_string(self) if hasattr(query, "as_string") else str(query)
                found.postgres.append(" ".join(text.split()[:3]))
            return original(self, query, *args, **kwargs)

        return counted

    for (cls, name), original in originals.items():
        setattr(cls, name, wrap(original))
    try:
        yield
    finally:
        for (cls, name), original in originals.items():
            setattr(cls, name, original)


@contextlib.contextmanager
def counting(postgres: bool = False) -> Iterator[Commands]:
    """The commands this thread sends inside the block."""
    install()
    found = Commands()
    _LISTENER.active[threading.get_ident()] = found
    try:
        if postgres:
            with _counting_postgres(found):
                yield found
        else:
            yield found
    finally:
        _LISTENER.active.pop(threading.get_ident(), None)
