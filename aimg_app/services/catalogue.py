"""The workflow templates on offer: lookup by name, and a file group's file names (the
contract's views of a template are ``api.workflows.WorkflowTemplateSchema``'s)."""
from __future__ import annotations

from ..errors import BadRequest, NotFound
from ..plugin_api import WorkflowTemplate


def get_template(resources, name: str) -> WorkflowTemplate:
    template = resources.workflow_templates.get(name)
    if template is None:
        raise BadRequest(f"Unknown workflow template '{name}'.")
    return template


def file_group_items(resources, group: str) -> list[str]:
    names: list[str] = []
    known = False
    for template in resources.workflow_templates.values():
        groups = template.file_groups()
        if group in groups:
            known = True
            names += [n for n in groups[group] if n not in names]
    if not known:
        raise NotFound(f"Unknown file group '{group}'.")
    return names
