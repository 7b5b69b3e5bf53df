"""A workflow template's parameters: which parameter a request field binds to, and each
given value checked against its parameter and typed (the defaults filled in)."""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadRequest
from ..models.file import StoredFile
from ..plugin_api import TemplateParameter, WorkflowTemplate

STRING_MAX = 10_000
BATCH_SIZE = "Batch Size"


def bound_parameters(template: WorkflowTemplate, option: str) -> list[TemplateParameter]:
    """The parameters a body field ``option`` binds to, in declaration order."""
    params = template.parameters()
    found = [p for p in params if p.option_name == option]
    return found or [p for p in params if p.name == option]


def value_of(template: WorkflowTemplate, typed: dict, option: str) -> Any:
    targets = bound_parameters(template, option)
    return typed.get(targets[0].name) if targets else None


def batch_parameter(template: WorkflowTemplate) -> TemplateParameter | None:
    """The parameter that sets how many Items (and outputs) a run makes."""
    found = bound_parameters(template, "batchSize")
    return found[0] if found else next((p for p in template.parameters() if p.name == BATCH_SIZE), None)



@dataclass
class ResolvedParameters:
    typed: dict[str, Any] = field(default_factory=dict)  # name -> typed value
    uploads: list[dict] = field(default_factory=list)  # [{"marker", "file_id", "name"}]

    def run_parameters(self) -> list[dict]:
        return [{"name": name, "value": stringify(value)} for name, value in self.typed.items()]


def stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _number(p: TemplateParameter, raw: Any) -> int | float:
    if isinstance(raw, bool):
        raise BadRequest(f"Parameter '{p.name}' must be a number.")
    try:
        value = float(raw) if not isinstance(raw, (int, float)) else raw
        value = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Parameter '{p.name}' must be a number.") from None
    except OverflowError:  # an integer beyond any float: out of every range
        raise BadRequest(f"Parameter '{p.name}' must be a finite number"
                         + (f" of at most {p.max}." if p.max not in (None, "") else ".")) from None
    if not math.isfinite(value):
        raise BadRequest(f"Parameter '{p.name}' must be a finite number.")
    low = float(p.min) if p.min not in (None, "") else None
    high = float(p.max) if p.max not in (None, "") else None
    if low is not None and value < low:
        raise BadRequest(f"Parameter '{p.name}' must be at least {p.min}.")
    if high is not None and value > high:
        raise BadRequest(f"Parameter '{p.name}' must be at most {p.max}.")
    if p.increment not in (None, ""):
        step = float(p.increment)
        if step > 0:
            ratio = (value - (low or 0.0)) / step
            if abs(ratio - round(ratio)) > 1e-9:
                raise BadRequest(f"Parameter '{p.name}' must be a multiple of {p.increment}"
                                 + (f" from {p.min}." if low else "."))
    return int(value) if value.is_integer() else value


def _boolean(p: TemplateParameter, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise BadRequest(f"Parameter '{p.name}' must be true or false.")


def _check_value(template: WorkflowTemplate, p: TemplateParameter, raw: Any, owner_id: str | None,
                 resolved: ResolvedParameters) -> Any:
    kind = p.data_type
    if kind == "number":
        return _number(p, raw)
    if kind == "boolean":
        return _boolean(p, raw)
    if isinstance(raw, (dict, list)) and kind not in ("array", "object", "files"):
        raise BadRequest(f"Parameter '{p.name}' must be a {kind}.")
    if kind == "string":
        text = str(raw)
        limit = int(float(p.max)) if p.max not in (None, "") else STRING_MAX
        if len(text) > limit:
            raise BadRequest(f"Parameter '{p.name}' must be at most {limit} characters.")
        return text
    if kind == "dropdown":
        if str(raw) not in p.dropdown_items:
            raise BadRequest(f"Parameter '{p.name}' must be one of: {', '.join(p.dropdown_items)}.")
        return str(raw)
    if kind == "filesGroup":
        names = template.file_groups().get(p.file_group or "", [])
        if str(raw) not in names:
            raise BadRequest(f"Parameter '{p.name}' must be one of the files of group '{p.file_group}': "
                             f"{', '.join(names)}.")
        return str(raw)
    if kind == "file":
        file_id = str(raw)
        record = StoredFile.objects(id=file_id).only("id", "owner_id", "content_type").first() if file_id else None
        if record is None or (record.owner_id and record.owner_id != owner_id):
            raise BadRequest(f"Parameter '{p.name}': file '{file_id}' does not exist.")
        if not (record.content_type or "").startswith("image/"):
            raise BadRequest(f"Parameter '{p.name}': file '{file_id}' is not an image.")
        resolved.uploads.append({"marker": p.replace_from_string, "file_id": file_id, "name": p.name})
        return file_id
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            raise BadRequest(f"Parameter '{p.name}' must be JSON ({kind}).") from None
    expected = dict if kind == "object" else list
    if not isinstance(value, expected):
        raise BadRequest(f"Parameter '{p.name}' must be a JSON {'object' if kind == 'object' else 'array'}.")
    return value


def resolve_parameters(template: WorkflowTemplate, given: dict[str, Any], owner_id: str | None) -> ResolvedParameters:
    """Every parameter of ``template``: the given value or its default, validated and typed.
    Unknown names and missing required values are 400 naming them."""
    params = {p.name: p for p in template.parameters()}
    unknown = [name for name in given if name not in params]
    if unknown:
        raise BadRequest(f"Workflow template '{template.identifier}' has no parameter "
                         + ", ".join(f"'{n}'" for n in unknown) + ".")
    resolved = ResolvedParameters()
    for name, p in params.items():
        raw = given.get(name)
        if raw is None or (isinstance(raw, str) and raw == "" and p.data_type != "string"):
            if p.default_value not in (None, ""):
                raw = p.default_value
            elif isinstance(p.extra_data, dict) and p.extra_data.get("randomIfEmpty"):
                low = int(float(p.min or 0))
                high = int(float(p.max or 2**32 - 1))
                raw = random.randint(low, high)
            elif p.is_optional and p.data_type == "string":
                raw = ""
            else:
                raise BadRequest(f"Parameter '{name}' is required by workflow template '{template.identifier}'.")
        resolved.typed[name] = _check_value(template, p, raw, owner_id, resolved)
    return resolved
