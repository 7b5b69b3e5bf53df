"""A fake ComfyUI server: ComfyUI's own HTTP and WebSocket protocol, without a GPU.

It follows what a real ComfyUI 0.3.x answers, so
the worker code that talks to it is the code that talks to a real GPU server: ``POST
/prompt`` validates the graph and answers ComfyUI's error format, one prompt runs at a
time, ``/ws`` streams ``status``/``execution_start``/``executing``/``progress``/``executed``/
``execution_success``/``execution_error``/``execution_interrupted``, outputs are real PNG
(and animated WEBP) files rendered with Pillow and served by ``/view``.

Knobs for tests and benchmarks: ``render_seconds`` (the time one sampler run takes),
``inject(kind, count)`` for failures (``execution_error``, ``hang``, ``crash``, ``reject``), and
``restart()`` (a restarted ComfyUI forgets every prompt). The same knobs are reachable over
HTTP under ``/fake/...`` when it runs as ``aimg fake-comfyui``.

``nodes`` holds the node classes (one table), ``engine`` ComfyUI's validation, queue and
execution, ``server`` the HTTP and WebSocket protocol around them.
"""
from __future__ import annotations

from .engine import Engine, FakeStats
from .nodes import DEFAULT_MODEL_FILES, NODES, NodeSpec
from .server import FakeComfyUI, main

__all__ = ["DEFAULT_MODEL_FILES", "NODES", "Engine", "FakeComfyUI", "FakeStats", "NodeSpec", "main"]
