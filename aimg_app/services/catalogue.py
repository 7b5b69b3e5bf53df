"""The workflow templates on offer: lookup by name, the contract's views of a template and
its parameters, and a file group's file names."""
from __future__ import annotations

from typing import Any

from ..errors import BadRequest, NotFound
from ..plugin_api import TemplateParameter, WorkflowTemplate


def get_template(resources, name: str) -> WorkflowTemplate:
    template = resources.workflow_templates.get(name)
    if template is None:
        raise BadRequest(f"Unknown workflow template '{name}'.")
    return template


def template_object(template: WorkflowTemplate) -> dict:
    """The contract's WorkflowTemplate."""
    return {
        "name": template.identifier,
        "label": template.label,
        "description": template.description,
        "deployments": list(template.deployments),
        "parameters": [parameter_object(p) for p in template.parameters()],
        "workflowTemplateFiles": {name: {"fileNames": list(f.file_names), "supportFileType": f.support_file_type}
                                  for name, f in template.files().items()},
    }


def parameter_object(p: TemplateParameter) -> dict:
    """The contract's WorkflowTemplateParameter (optional members only when set)."""
    body: dict[str, Any] = {
        "name": p.name, "dataType": p.data_type, "description": p.description, "defaultValue": p.default_value,
        "replaceFromString": p.replace_from_string, "isOptional": p.is_optional, "optionName": p.option_name,
        "isAlwaysVisible": p.is_always_visible, "isHidden": p.is_hidden,
    }
    for key, value in (("type", p.type), ("uiType", p.ui_type), ("min", p.min), ("max", p.max),
                       ("increment", p.increment), ("fileGroup", p.file_group),
                       ("fileGroupDestination", p.file_group_destination), ("extraData", p.extra_data)):
        if value is not None:
            body[key] = value
    if p.dropdown_items:
        body["dropdownItems"] = list(p.dropdown_items)
    return body


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
