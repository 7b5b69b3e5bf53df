"""A template's ComfyUI graph with the resolved parameters' values in place of its markers."""
from __future__ import annotations

from typing import Any

from ..plugin_api import WorkflowTemplate
from .template_parameters import ResolvedParameters, stringify


def substitute(node: Any, markers: dict[str, Any]) -> Any:
    """Replace markers in every string of ``node``: a string that is exactly a marker takes
    the typed value; a marker inside a longer string is replaced by the value's text."""
    if isinstance(node, dict):
        return {key: substitute(value, markers) for key, value in node.items()}
    if isinstance(node, list):
        return [substitute(value, markers) for value in node]
    if isinstance(node, str):
        if node in markers:
            return markers[node]
        for marker, value in markers.items():
            if marker in node:
                node = node.replace(marker, stringify(value))
        return node
    return node


def render_graph(template: WorkflowTemplate, resolved: ResolvedParameters, control_net_preset: str | None = None) -> dict:
    upload_markers = {u["marker"] for u in resolved.uploads}
    markers = {p.replace_from_string: resolved.typed[p.name] for p in template.parameters()
               if p.replace_from_string and p.replace_from_string not in upload_markers}
    graph = substitute(template.fresh_graph(), markers)
    if control_net_preset:
        graph = template.control_net_preset(graph, control_net_preset)
    return graph
