"""Index evidence for paginated queries.

mongoeco answers ``explain()`` with its own SQLite plan, so the portable check is
structural: some index declared on the model must start with the query's equality fields
followed by its sort keys (in either direction). Against a real MongoDB
(``AIMG_MONGODB_URI``) the winning plan is checked too: an index scan and no SORT stage.
"""
from __future__ import annotations


def _declared(document) -> list[list[tuple[str, int]]]:
    info = document._get_collection().index_information()
    return [[(field, int(direction)) for field, direction in spec["key"]] for spec in info.values()]


def covering_index(document, equality: list[str], sort: list[tuple[str, int]]):
    """The declared index serving ``find(equality...).sort(sort)``, or None."""
    wanted_sort = [(("_id" if f == "id" else f), d) for f, d in sort]
    for keys in _declared(document):
        head, tail = keys[: len(equality)], keys[len(equality):]
        if sorted(f for f, _ in head) != sorted(equality):
            continue
        if len(tail) < len(wanted_sort):
            continue
        forward = all(t == w for t, w in zip(tail, wanted_sort))
        backward = all(t == (w[0], -w[1]) for t, w in zip(tail, wanted_sort))
        if forward or backward:
            return keys
    return None


def winning_plan_stages(explain: dict) -> list[str] | None:
    """Stage names of a real MongoDB's winning plan; None when the server is not MongoDB."""
    plan = (explain.get("queryPlanner") or {}).get("winningPlan")
    if plan is None:
        return None
    stages, todo = [], [plan]
    while todo:
        node = todo.pop()
        stages.append(node.get("stage"))
        todo += [node[k] for k in ("inputStage", "queryPlan") if isinstance(node.get(k), dict)]
        todo += node.get("inputStages", [])
    return stages
