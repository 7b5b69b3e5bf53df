"""The default report queues.

User queues: the categories a user picks when reporting an Item ("Not Specified" is the
default). System queue "Prompt Filter": opens a report when the prompt filter removed
words from an Item's prompt, so admins can review what was generated from it.

Settings (``[plugins."Prompt Filter"]``): ``min_ignored_words`` (1) words removed before a
report is opened.
"""
from __future__ import annotations

from aimg_app.plugin_api import ReportQueue, ReviewedItem, hookimpl

USER_QUEUES = (
    ("Not Specified", "Not specified"),
    ("Underage", "Depicts a minor"),
    ("Non-Consensual", "Real person without consent"),
    ("Illegal Content", "Illegal content"),
    ("Violence", "Violence or gore"),
    ("Hate", "Hateful content"),
    ("Copyright", "Copyright infringement"),
    ("Spam", "Spam"),
    ("Other", "Other"),
)


def _user_queue(identifier: str, label: str) -> type[ReportQueue]:
    return type(f"UserQueue_{identifier.replace(' ', '').replace('-', '')}", (ReportQueue,),
                {"identifier": identifier, "label": label, "__doc__": f"The {label!r} report category."})


class PromptFilterQueue(ReportQueue):
    """System queue: Items whose prompt had words removed by the prompt filter."""

    identifier = "Prompt Filter"
    label = "Prompt filter matches"
    system = True

    def review(self, item: ReviewedItem) -> str | None:
        """Open a report when the prompt filter ignored at least ``min_ignored_words`` words."""
        minimum = int(self.settings.get("min_ignored_words", 1))
        if len(item.ignored_words) >= max(1, minimum):
            return "Words removed by the prompt filter: " + ", ".join(item.ignored_words[:50])
        return None


@hookimpl
def register_report_queues():
    return [_user_queue(identifier, label) for identifier, label in USER_QUEUES] + [PromptFilterQueue]
