"""An honest ETA for a run: learned service times, the queue ahead, the servers able to run it.

A run's *size* is its pixels x steps x images relative to 512x512, 20 steps, one image
(read through the template's option names, so any template has one). Each completed run
teaches the seconds one unit of size takes on ComfyUI for its template and model (and for
its template alone, the fallback; exponentially weighted means in Redis, shared by every
process). The estimate of a running run is what is
left of its expected time; a queued run adds the expected time of the runs ahead of it,
spread over the servers that are up.
"""
from __future__ import annotations

import redis

from ..models.workflow import WorkflowState
from .template_parameters import bound_parameters

_KEY = "aimg:eta:seconds-per-unit"
_WEIGHT = 0.2  # of the newest measurement


def _values(resources, state: WorkflowState):
    template = resources.workflow_templates.get(state.template_name)
    values = {p["name"]: p["value"] for p in state.run_parameters}

    def value(option: str):
        targets = bound_parameters(template, option) if template is not None else []
        return values.get(targets[0].name) if targets else None
    return value


def keys(resources, state: WorkflowState) -> list[str]:
    """What a run's service time is learned under: its template and model, then its template."""
    model = _values(resources, state)("modelName") or state.model_id
    return [f"{state.template_name}|{model}", state.template_name] if model else [state.template_name]


def size_units(resources, state: WorkflowState) -> float:
    value = _values(resources, state)

    def number(option: str, default: float) -> float:
        try:
            found = value(option)
            return float(found) if found not in (None, "") else default
        except ValueError:
            return default

    pixels = number("width", 512) * number("height", 512) / (512 * 512)
    return max(0.05, pixels * number("steps", 20) / 20 * max(1, len(state.item_ids)))


def record(resources, state: WorkflowState, seconds: float) -> None:
    """``state``'s run took ``seconds`` on ComfyUI."""
    observed = seconds / size_units(resources, state)
    try:
        for key in keys(resources, state):
            current = resources.redis.hget(_KEY, key)
            mean = observed if current is None else (1 - _WEIGHT) * float(current) + _WEIGHT * observed
            resources.redis.hset(_KEY, key, f"{mean:.6f}")
    except redis.RedisError:
        pass


def seconds_remaining(resources, state: WorkflowState, position: int | None) -> float | None:
    """Seconds until the run is likely done; None while nothing has been learned yet."""
    if state.state not in ("queued", "running"):
        return None
    try:
        learned = next((v for v in resources.redis.hmget(_KEY, keys(resources, state)) if v is not None), None)
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
