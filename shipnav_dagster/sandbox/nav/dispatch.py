"""Route one authenticated OData operation to its handler: GET of metadata, service document,
collections and entities; PATCH of entities. Used for plain HTTP requests and for each operation
of a ``$batch``. The caller holds ``world.lock``.
"""

import copy
from typing import Any

from shipnav_dagster.sandbox.nav.errors import Reply, json_reply, method_not_allowed
from shipnav_dagster.sandbox.nav.operation import Operation
from shipnav_dagster.sandbox.nav.query import (
    Resolved,
    Target,
    get_collection,
    get_entity,
    metadata,
    parse_target,
    resolve,
    serialize,
    service_document,
)
from shipnav_dagster.sandbox.nav.rules import apply_patch, check_if_match, push_to_lines, read_body
from shipnav_dagster.sandbox.nav.schema import POSTED_SHIPMENT, SALES_ORDER
from shipnav_dagster.sandbox.state import NavState, SandboxWorld


class Journal:
    """Records as they were before a change, so a transactional $batch can roll back."""

    def __init__(self) -> None:
        self._saved: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}

    def save(self, record: dict[str, Any]) -> None:
        self._saved.setdefault(id(record), (record, copy.deepcopy(record)))

    def rollback(self) -> None:
        for record, before in reversed(list(self._saved.values())):
            record.clear()
            record.update(before)
        self._saved.clear()


def dispatch(
    world: SandboxWorld, op: Operation, target: Target | None = None, journal: Journal | None = None
) -> Reply:
    nav = world.nav
    target = target if target is not None else parse_target(op)
    res = resolve(nav, target)
    method = op.method.upper()
    if res.kind == "metadata" and method == "GET":
        return metadata(nav)
    if res.kind == "service" and method == "GET":
        return service_document(target, nav)
    if res.kind in ("collection", "count") and method == "GET":
        return get_collection(nav, op, target, res)
    if res.kind == "entity" and method == "GET":
        return get_entity(nav, op, target, res)
    if res.kind == "entity" and method in ("PATCH", "MERGE"):
        return patch_entity(nav, op, target, res, journal)
    raise method_not_allowed(method)


def patch_entity(
    nav: NavState, op: Operation, target: Target, res: Resolved, journal: Journal | None = None
) -> Reply:
    entity, record = res.entity, res.record
    assert entity is not None and record is not None
    if nav.faults.take("concurrent_edit_next"):
        nav.stamp(record)  # "another user" saved the record a moment ago
    check_if_match(op.header("if-match"), record)
    body = read_body(op.body)
    order = res.order if entity is not POSTED_SHIPMENT else None
    new = apply_patch(nav, entity, record, order, body)
    if journal is not None:
        journal.save(record)
        if entity is SALES_ORDER:
            for line in nav.sales_lines.get(record["No"], []):
                journal.save(line)
    before = dict(record)
    record.clear()
    record.update(new)
    if body:
        nav.stamp(record)
    if entity is SALES_ORDER:
        push_to_lines(nav, record["No"], before, record)
    result = {"@odata.context": f"{target.root_url}/$metadata#{res.context}"}
    result.update(serialize(entity, record, None))
    return json_reply(result, headers={"ETag": NavState.etag(record)})
