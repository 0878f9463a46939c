"""Reading through the emulated page web services: addresses, keys, query options, GET.

Built to what NAV 2018 and Business Central document for OData V4 page web services: the
entity address ``Service(Key='...')`` and the lines containment ``SalesOrderSalesLines``
(https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/use-containments-associations),
``$filter``/``$select``/``$orderby``/``$top``/``$skip``/``$count``, server-driven paging with
``@odata.nextLink`` and ``Prefer: odata.maxpagesize`` (server maximum 1,000 in NAV 2013-2018,
20,000 in Business Central), weak ETags on every entity.
"""

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode

from shipnav_dagster.sandbox.nav import schema
from shipnav_dagster.sandbox.nav.errors import (
    ODataFailure,
    Reply,
    bad_syntax,
    json_reply,
    resource_not_found,
)
from shipnav_dagster.sandbox.nav.odata_filter import (
    FilterError,
    Literal,
    check_filter,
    evaluate,
    parse_filter,
    parse_key_predicate,
    parse_orderby,
)
from shipnav_dagster.sandbox.nav.operation import Operation
from shipnav_dagster.sandbox.nav.rules import check_filter_lengths
from shipnav_dagster.sandbox.nav.schema import (
    LINES_SEGMENT,
    POSTED_SHIPMENT,
    SALES_LINE,
    SALES_ORDER,
    EntityDef,
    view,
)
from shipnav_dagster.sandbox.state import SANDBOX_NAV_COMPANY, NavState

SUPPORTED_OPTIONS = {
    "$filter",
    "$select",
    "$top",
    "$skip",
    "$orderby",
    "$count",
    "$skiptoken",
    "$expand",
    "$schemaversion",
    "$format",
}
BATCH_SEGMENT = "$batch"


@dataclass
class Segment:
    name: str
    keys: list[tuple[str | None, Literal]] | None  # None: no key predicate


@dataclass
class Target:
    root_url: str  # the service root as the client addressed it (absolute)
    request_url: str  # the absolute URL without the query string, as sent
    segments: list[Segment]
    text: str  # decoded resource path, for @odata.context


_SEGMENT = re.compile(r"([A-Za-z_$][A-Za-z0-9_]*)(?:\((.*)\))?", re.DOTALL)


def _parse_segment(raw: str) -> Segment:
    text = unquote(raw, encoding="utf-8", errors="strict")
    match = _SEGMENT.fullmatch(text)
    if match is None:
        raise bad_syntax()
    keys = None
    if match.group(2) is not None:
        try:
            keys = parse_key_predicate(match.group(2))
        except FilterError as exc:
            raise bad_syntax() from exc
    return Segment(match.group(1), keys)


def _company(segment: Segment | None, op: Operation) -> str:
    if segment is not None and segment.keys:
        literal = segment.keys[0][1]
        if len(segment.keys) == 1 and segment.keys[0][0] in (None, "Name") and literal.kind == "string":
            return str(literal.value)
        raise bad_syntax()
    named = [value for key, value in op.params if key == "company"]
    if named:
        return named[0]
    # Inside a $batch each operation may name its company in a "Company" header (use-odata-batch).
    header = op.header("company")
    if header:
        return header
    raise ODataFailure(
        400,
        "Internal_CompanyNotFound",
        "Cannot process the request because the default company cannot be found. You can specify a "
        "default company in the service configuration file, or specify one for each tenant, or you "
        "can add a query string in the form of 'company=[name]'",
    )


def parse_target(op: Operation) -> Target:
    parts = op.raw_path.split("/")
    lowered = [p.lower() for p in parts]
    if "odatav4" not in lowered:
        first = next((p for p in parts if p), "")
        raise resource_not_found(unquote(first))
    idx = lowered.index("odatav4")
    root_parts, rest = parts[: idx + 1], [p for p in parts[idx + 1 :] if p != ""]
    company_segment = None
    if rest and unquote(rest[0]).startswith("Company("):
        company_segment = _parse_segment(rest[0])
        root_parts.append(rest[0])
        rest = rest[1:]
    segments = [_parse_segment(p) for p in rest]
    names = [s.name for s in segments]
    if names not in (["$metadata"], [BATCH_SEGMENT]):
        name = _company(company_segment, op)
        if name != SANDBOX_NAV_COMPANY:
            raise ODataFailure(400, "Internal_CompanyNotFound", f"Cannot find the company '{name}'")
    return Target(
        root_url=op.base_url + "/".join(root_parts),
        request_url=op.base_url + op.raw_path,
        segments=segments,
        text="/".join(unquote(p) for p in rest),
    )


# --- resolving a path to records -------------------------------------------------------------


@dataclass
class Resolved:
    kind: str  # service | metadata | collection | entity | count
    entity: EntityDef | None = None
    records: list[dict[str, Any]] = field(default_factory=list)  # collection members
    record: dict[str, Any] | None = None  # the addressed entity
    order: dict[str, Any] | None = None  # the parent order of a line (or the order itself)
    context: str = ""  # @odata.context fragment


def _named_keys(segment: Segment, entity: EntityDef) -> dict[str, Literal]:
    keys = segment.keys or []
    if len(entity.keys) == 1 and len(keys) == 1 and keys[0][0] is None:
        return {entity.keys[0]: keys[0][1]}
    named = {name: lit for name, lit in keys if name is not None}
    if len(named) != len(keys) or set(named) != set(entity.keys):
        raise ODataFailure(
            400,
            "BadRequest_NotFound",
            f"Bad Request - Error in query syntax: the key of {entity.name} is ({', '.join(entity.keys)})",
        )
    return named


def _key_values(segment: Segment, entity: EntityDef) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, lit in _named_keys(segment, entity).items():
        expected = "int" if entity.prop(name).edm == "Edm.Int32" else "string"  # type: ignore[union-attr]
        if lit.kind != expected:
            raise bad_syntax(f": the key value of {name} has the wrong type")
        values[name] = lit.value
    return values


def _missing_record(entity: EntityDef, keys: Mapping[str, Any]) -> ODataFailure:
    ident = ",".join(
        f"{entity.key_captions[k]}={v!r}" if isinstance(v, str) else f"{entity.key_captions[k]}={v}"
        for k, v in keys.items()
    )
    return ODataFailure(
        404,
        "Internal_RecordNotFound",
        f"The {entity.table} does not exist. Identification fields and values: {ident}",
    )


def _orders(nav: NavState) -> list[dict[str, Any]]:
    # Page 42's SourceTableView: Document Type = Order.
    return [r for r in nav.sales_orders.values() if r.get("Document_Type", "Order") == "Order"]


def _order(nav: NavState, segment: Segment) -> dict[str, Any]:
    keys = _key_values(segment, SALES_ORDER)
    record = nav.sales_orders.get(keys["No"])
    if keys["Document_Type"] != "Order" or record is None or record.get("Document_Type", "Order") != "Order":
        raise _missing_record(SALES_ORDER, keys)
    return record


def _line(nav: NavState, order: dict[str, Any], segment: Segment) -> dict[str, Any]:
    keys = _key_values(segment, SALES_LINE)
    if keys["Document_Type"] == "Order" and keys["Document_No"] == order["No"]:
        for line in nav.sales_lines.get(order["No"], []):
            if line.get("Line_No") == keys["Line_No"]:
                return line
    raise _missing_record(SALES_LINE, keys)


def _posted(nav: NavState, segment: Segment) -> dict[str, Any]:
    keys = _key_values(segment, POSTED_SHIPMENT)
    record = nav.posted_shipments.get(keys["No"])
    if record is None:
        raise _missing_record(POSTED_SHIPMENT, keys)
    return record


def resolve(nav: NavState, target: Target) -> Resolved:
    segs = target.segments
    if not segs:
        return Resolved("service")
    if len(segs) == 1 and segs[0].name == "$metadata" and segs[0].keys is None:
        return Resolved("metadata")
    head = segs[0]
    if head.name not in schema.SERVICES or head.name not in nav.published:
        raise resource_not_found(head.name)
    entity = schema.SERVICES[head.name]
    count = segs[-1].name == "$count" and segs[-1].keys is None
    body = segs[:-1] if count else segs
    resolved = _resolve_body(nav, entity, body, target)
    if count:
        if resolved.kind != "collection":
            raise resource_not_found(segs[-1].name)
        resolved.kind = "count"
    return resolved


def _resolve_body(nav: NavState, entity: EntityDef, segs: list[Segment], target: Target) -> Resolved:
    head = segs[0]
    if len(segs) == 1 and head.keys is None:
        records = _orders(nav) if entity is SALES_ORDER else list(nav.posted_shipments.values())
        return Resolved("collection", entity, records=records, context=entity.name)
    if head.keys is None or len(segs) > 2:
        raise resource_not_found(segs[-1].name)
    if entity is POSTED_SHIPMENT:
        if len(segs) != 1:
            raise resource_not_found(segs[1].name)
        return Resolved("entity", entity, record=_posted(nav, head), context=f"{entity.name}/$entity")
    order = _order(nav, head)
    if len(segs) == 1:
        return Resolved("entity", entity, record=order, order=order, context=f"{entity.name}/$entity")
    tail = segs[1]
    if tail.name != LINES_SEGMENT:
        raise resource_not_found(tail.name)
    order_path = target.text.split("/", 1)[0]
    if tail.keys is None:
        lines = list(nav.sales_lines.get(order["No"], []))
        return Resolved(
            "collection", SALES_LINE, records=lines, order=order, context=f"{order_path}/{tail.name}"
        )
    line = _line(nav, order, tail)
    return Resolved(
        "entity", SALES_LINE, record=line, order=order, context=f"{order_path}/{tail.name}/$entity"
    )


# --- serialization ---------------------------------------------------------------------------


def serialize(
    entity: EntityDef,
    record: Mapping[str, Any],
    select: list[str] | None,
    expand_lines: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    full = view(entity, record)
    body: dict[str, Any] = {"@odata.etag": NavState.etag(dict(record))}
    for name in select or [p.name for p in entity.props]:
        body[name] = full[name]
    if expand_lines is not None:
        body[LINES_SEGMENT] = [serialize(SALES_LINE, line, None) for line in expand_lines]
    return body


# --- query options ---------------------------------------------------------------------------


@dataclass
class QueryOptions:
    filter: Any = None
    select: list[str] | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)
    top: int | None = None
    skip: int = 0
    count: bool = False
    offset: int = 0  # from $skiptoken
    expand_lines: bool = False


def _non_negative(name: str, value: str) -> int:
    if not re.fullmatch(r"\d+", value):
        raise ODataFailure(400, "BadRequest_NotFound", f"Invalid value '{value}' for the {name} query option")
    return int(value)


def _select(value: str, entity: EntityDef) -> list[str] | None:
    names = [part.strip() for part in value.split(",")]
    if "*" in names:
        return None
    for name in names:
        if entity.prop(name) is None:
            raise ODataFailure(
                400,
                "BadRequest_NotFound",
                f"Could not find a property named '{name}' on type 'NAV.{entity.name}'",
            )
    return list(dict.fromkeys(names))


def _skiptoken(value: str) -> int:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value.encode()).decode())
        return int(decoded["offset"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ODataFailure(400, "BadRequest_NotFound", "The skip token is not valid") from exc


def make_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def parse_options(params: list[tuple[str, str]], entity: EntityDef, nav: NavState) -> QueryOptions:
    seen: set[str] = set()
    opts = QueryOptions()
    for name, value in params:
        if not name.startswith("$"):
            continue  # company=, tenant= and friends
        if name not in SUPPORTED_OPTIONS:
            raise ODataFailure(400, "BadRequest_NotFound", f"The query parameter '{name}' is not supported")
        if name in seen:
            raise ODataFailure(
                400, "BadRequest_NotFound", f"Query option '{name}' was specified more than once"
            )
        seen.add(name)
        _apply_option(opts, name, value, entity, nav)
    return opts


def _apply_option(opts: QueryOptions, name: str, value: str, entity: EntityDef, nav: NavState) -> None:
    try:
        if name == "$filter":
            opts.filter = parse_filter(value)
            check_filter(opts.filter, entity.field_types)
            check_filter_lengths(opts.filter, entity, nav)
        elif name == "$orderby":
            opts.orderby = parse_orderby(value, entity.field_types)
    except FilterError as exc:
        raise ODataFailure(400, exc.code, exc.message) from exc
    if name == "$select":
        opts.select = _select(value, entity)
    elif name == "$top":
        opts.top = _non_negative(name, value)
    elif name == "$skip":
        opts.skip = _non_negative(name, value)
    elif name == "$count":
        if value not in ("true", "false"):
            raise ODataFailure(400, "BadRequest_NotFound", f"Invalid value '{value}' for $count")
        opts.count = value == "true"
    elif name == "$skiptoken":
        opts.offset = _skiptoken(value)
    elif name == "$expand":
        if entity is not SALES_ORDER or value.strip() != LINES_SEGMENT:
            raise ODataFailure(
                400, "BadRequest_NotFound", f"Could not find a navigation property named '{value}'"
            )
        opts.expand_lines = True


def _matching(
    entity: EntityDef, records: Iterable[dict[str, Any]], opts: QueryOptions
) -> list[dict[str, Any]]:
    fields = entity.field_types
    rows = [(r, view(entity, r)) for r in records]
    if opts.filter is not None:
        rows = [(r, v) for r, v in rows if evaluate(opts.filter, v, fields)]
    rows.sort(key=lambda rv: tuple(rv[1][k] for k in entity.keys))  # NAV returns key order
    for name, descending in reversed(opts.orderby):
        rows.sort(key=_by_field(name), reverse=descending)
    return [r for r, _v in rows]


def _page_size(nav: NavState, headers: Mapping[str, str]) -> tuple[int, bool]:
    """min(Prefer: odata.maxpagesize, server max); whether the preference was honoured."""
    match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", headers.get("prefer", ""))
    if match is None or int(match.group(1)) <= 0:
        return nav.max_page_size, False
    return min(int(match.group(1)), nav.max_page_size), True


# --- handlers --------------------------------------------------------------------------------


def service_document(target: Target, nav: NavState) -> Reply:
    value = [
        {"name": name, "kind": "EntitySet", "url": name}
        for name in sorted(nav.published)
        if name in schema.SERVICES
    ]
    return json_reply({"@odata.context": f"{target.root_url}/$metadata", "value": value})


def metadata(nav: NavState) -> Reply:
    xml = schema.metadata_xml(nav.published, nav.tracking_max_length, nav.platform)
    return Reply(200, xml, "application/xml; charset=utf-8")


def get_collection(nav: NavState, op: Operation, target: Target, res: Resolved) -> Reply:
    entity = res.entity
    assert entity is not None
    params = op.params
    opts = parse_options(params, entity, nav)
    matching = _matching(entity, res.records, opts)
    total = len(matching)
    matching = matching[opts.skip :]
    if opts.top is not None:
        matching = matching[: opts.top]
    if res.kind == "count":
        return Reply(200, str(total), "text/plain")
    size, honoured = _page_size(nav, op.headers)
    page = matching[opts.offset : opts.offset + size]
    value = [serialize(entity, r, opts.select, _expansion(nav, r, opts)) for r in page]
    select_ctx = f"({','.join(opts.select)})" if opts.select else ""
    body: dict[str, Any] = {"@odata.context": f"{target.root_url}/$metadata#{res.context}{select_ctx}"}
    if opts.count:
        body["@odata.count"] = total
    body["value"] = value
    if opts.offset + size < len(matching):
        body["@odata.nextLink"] = _next_link(target, params, opts.offset + size)
    headers = {"Preference-Applied": f"odata.maxpagesize={size}"} if honoured else {}
    return json_reply(body, headers=headers)


def _expansion(nav: NavState, record: dict[str, Any], opts: QueryOptions) -> list[dict[str, Any]] | None:
    return list(nav.sales_lines.get(record["No"], [])) if opts.expand_lines else None


def _next_link(target: Target, params: list[tuple[str, str]], offset: int) -> str:
    kept = [(k, v) for k, v in params if k != "$skiptoken"] + [("$skiptoken", make_skiptoken(offset))]
    return f"{target.request_url}?{urlencode(kept, quote_via=quote, safe='$')}"


def get_entity(nav: NavState, op: Operation, target: Target, res: Resolved) -> Reply:
    entity, record = res.entity, res.record
    assert entity is not None and record is not None
    opts = parse_options(op.params, entity, nav)
    if opts.filter is not None or opts.top is not None or opts.orderby:
        raise ODataFailure(
            400, "BadRequest_NotFound", "Query options $filter, $top and $orderby need a collection"
        )
    body = {"@odata.context": f"{target.root_url}/$metadata#{res.context}"}
    body.update(serialize(entity, record, opts.select, _expansion(nav, record, opts)))
    return json_reply(body, headers={"ETag": NavState.etag(record)})


def _by_field(name: str) -> Callable[[tuple[dict[str, Any], dict[str, Any]]], Any]:
    """Sort key of (record, view) pairs by one field of the view."""
    return lambda rv: rv[1][name]
