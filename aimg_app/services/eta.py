"""An honest ETA for a run: learned service times, the queue ahead, the servers able to run it.

A run's *size* is its pixels x steps x images relative to 512x512, 20 steps, one image
(read through the template's option names, so any template has one). Each completed run
teaches the seconds one unit of size takes on ComfyUI for its template (an exponentially
weighted mean in Redis, shared by every process). The estimate of a running run is what is
left of its expected time; a queued run adds the expected time of the runs ahead of it,
spread over the servers that are up.
"""
from __future__ import annotations

import redis

from ..models.workflow import WorkflowState

_KEY = "aimg:eta:seconds-per-unit"
_WEIGHT = 0.2  # of the newest measurement


def size_units(resources, state: WorkflowState) -> float:
    from .workflows import bound_parameters

    template = resources.workflow_templates.get(state.template_name)
    values = {p["name"]: p["value"] for p in state.run_parameters}

    def number(option: str, default: float) -> float:
        targets = bound_parameters(template, option) if template is not None else []
        try:
            return float(values[targets[0].name]) if targets and targets[0].name in values else default
        except ValueError:
            return default

    pixels = number("width", 512) * number("height", 512) / (512 * 512)
    return max(0.05, pixels * number("steps", 20) / 20 * max(1, len(state.item_ids)))


def record(connection: redis.Redis, template_name: str, units: float, seconds: float) -> None:
    """A run of ``template_name`` of ``units`` took ``seconds`` on ComfyUI."""
    try:
        observed = seconds / max(units, 0.05)
        current = connection.hget(_KEY, template_name)
        mean = observed if current is None else (1 - _WEIGHT) * float(current) + _WEIGHT * observed
        connection.hset(_KEY, template_name, f"{mean:.6f}")
    except redis.RedisError:
        pass


def seconds_remaining(resources, state: WorkflowState, position: int | None) -> float | None:
    """Seconds until the run is likely done; None while nothing has been learned yet."""
    if state.state not in ("queued", "running"):
        return None
    try:
        learned = resources.redis.hget(_KEY, state.template_name)
        if learned is None:
            return None
        up = sum(1 for url in resources.settings.comfyui_urls
                 if not resources.redis.exists(f"aimg:comfy:down:{url}")) or 1
    except redis.RedisError:
        return None
    own = float(learned) * size_units(resources, state)
    if state.state == "running":
        return round(own * (1.0 - float(state.progress or 0.0)), 1)
    ahead = max(0, (position or 1) - 1)
    return round(ahead * own / up + own, 1)
