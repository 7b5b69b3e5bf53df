"""The report-queue plugin family: the categories of ``reportItems`` and the system queues
that open reports by themselves."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class ReviewedItem:
    """What a system queue sees of a completed Item (plain values, no database document)."""

    id: str
    user_id: str
    domain: str
    mtype: str
    prompt: str = ""
    negprompt: str | None = None
    filtered_prompt: str | None = None
    filtered_negprompt: str | None = None
    ignored_words: tuple[str, ...] = ()
    model_id: str | None = None
    workflow_template_name: str | None = None
    url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class ReportQueue:
    """Base class of a report queue. Subclass it and return the subclass from
    ``register_report_queues``; the core instantiates it once per application with the
    plugin's settings (``[plugins.<identifier>]``).

    ``identifier`` (the value users send as ``reportQueue`` and admins filter on) and
    ``label`` are required. A *user* queue (``system = False``, the default) is offered to
    users by ``getReportQueues``; a *system* queue is shown to admins only and opens reports
    itself through ``review``.
    """

    identifier: str = ""
    label: str = ""
    system: bool = False

    def __init__(self, settings: Mapping[str, Any]):
        """``settings``: this queue's configuration mapping (may be empty)."""
        if not self.identifier or not self.label:
            raise NotImplementedError(f"{type(self).__name__} must set identifier and label")
        self.settings = dict(settings)

    def review(self, item: ReviewedItem) -> str | None:
        """Called for a system queue when an Item completes, with ``item`` (a
        ``ReviewedItem``). Return the reason to open a report in this queue (stored as the
        report's additional information), or None. Must be quick and must not perform
        network I/O or raise; the default opens nothing."""
        return None
