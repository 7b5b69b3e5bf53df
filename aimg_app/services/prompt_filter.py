"""The prompt-filter plugins' words taken out of a prompt."""
from __future__ import annotations

import re

from ..plugin_api import PromptUser
from . import tiers


def filter_prompt(resources, prompt: str, user, domain: str) -> tuple[str, list[str]]:
    """Ask the prompt-filter plugins; remove the words they name. Returns (prompt, ignored)."""
    who = PromptUser(user_id=user.id if user else None, domain=domain, tier=tiers.tier_of(user),
                     abuse=int(getattr(user, "abuse", 0) or 0) if user else 0)
    ignored: list[str] = []
    for answer in resources.plugins.hook.filter_prompt(prompt=prompt, user=who):
        for word in answer or []:
            word = str(word).strip()
            if word and word.lower() not in (w.lower() for w in ignored):
                ignored.append(word)
    if not ignored:
        return prompt, []
    pattern = re.compile(r"(?<![\w'-])(" + "|".join(re.escape(w) for w in ignored) + r")(?![\w'-])", re.IGNORECASE)
    cleaned = re.sub(r"\s{2,}", " ", pattern.sub("", prompt)).strip(" ,")
    return cleaned, ignored
