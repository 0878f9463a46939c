#!/usr/bin/env python3
"""Compare the sandbox's hand-written ShipStation V2 schemas with the official OpenAPI spec.

Usage: ``python scripts/check_v2_schemas.py PATH`` where PATH is a local copy of the spec's
``openapi.yaml`` (or a checkout of shipstation/mcp-shipstation-api that contains it). The spec is
read from PATH only and never stored in this repository.

For every schema in ``tests/shipstation_v2_schemas.py`` that names a spec component, it reports
required properties present on one side only, properties defined on one side only, and shared
properties whose JSON type, nullability or enum values differ. Differences listed in
``KNOWN_DEVIATIONS`` are shown as known. Exit status: 0 when nothing unknown differs, 1
otherwise, 2 when the spec cannot be read. A development aid: no test or CI job needs it.
"""

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from shipstation_v2_schemas import DEFS, KNOWN_DEVIATIONS, SPEC_COMPONENTS  # noqa: E402

Schema = dict[str, Any]


@dataclass(frozen=True)
class Shape:
    """What is compared of one property: its JSON types, whether null is allowed, its enum."""

    types: frozenset[str]
    nullable: bool
    enum: frozenset[str] | None

    def describe(self) -> str:
        text = "|".join(sorted(self.types)) or "any"
        if self.nullable:
            text += "|null"
        if self.enum is not None:
            text += f" enum{sorted(self.enum)}"
        return text


@dataclass
class Flat:
    """An object schema with its allOf parts merged."""

    properties: dict[str, Schema]
    required: set[str]


class Resolver:
    def __init__(self, root: Schema, prefix: str) -> None:
        self.root = root
        self.prefix = prefix  # "#/components/schemas/" or "#/$defs/"

    def deref(self, schema: Schema) -> Schema:
        seen = 0
        while "$ref" in schema and seen < 50:
            name = schema["$ref"].removeprefix(self.prefix)
            schema = {**self.lookup(name), **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
        return schema

    def lookup(self, name: str) -> Schema:
        raise NotImplementedError

    def flatten(self, schema: Schema) -> Flat:
        """Properties (request-only ``writeOnly`` ones left out) and required names, allOf merged."""
        merged = self._merge(schema)
        kept = {
            name: value for name, value in merged.properties.items() if not self.deref(value).get("writeOnly")
        }
        return Flat(kept, merged.required & set(kept))

    def _merge(self, schema: Schema) -> Flat:
        schema = self.deref(schema)
        flat = Flat(dict(schema.get("properties") or {}), set(schema.get("required") or []))
        for part in schema.get("allOf") or []:
            inner = self._merge(part)
            for name, value in inner.properties.items():
                flat.properties.setdefault(name, value)
            flat.required |= inner.required
        return flat

    def shape(self, schema: Schema) -> Shape:
        schema = self.deref(schema)
        nullable = bool(schema.get("x-nullable"))
        types: set[str] = set()
        enum: frozenset[str] | set[str] | None = None
        for option in schema.get("anyOf") or []:
            inner = self.shape(option)
            types |= inner.types
            nullable = nullable or inner.nullable
            enum = inner.enum if inner.enum is not None else enum
        for part in schema.get("allOf") or []:
            inner = self.shape(part)
            types |= inner.types
            nullable = nullable or inner.nullable
            enum = inner.enum if inner.enum is not None else enum
        kind = schema.get("type")
        for name in kind if isinstance(kind, list) else [kind] if kind else []:
            if name == "null":
                nullable = True
            else:
                types.add(name)
        if "enum" in schema:
            enum = {str(v) for v in schema["enum"]}
            types.add("string")
        if "properties" in schema and not types:
            types.add("object")
        return Shape(frozenset(types), nullable, frozenset(enum) if enum is not None else None)


class SpecResolver(Resolver):
    def lookup(self, name: str) -> Schema:
        return self.root["components"]["schemas"][name]


class OursResolver(Resolver):
    def lookup(self, name: str) -> Schema:
        return self.root[name]


def load_spec(path: Path) -> Schema:
    if path.is_dir():
        path = path / "openapi.yaml"
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def compare(ours_name: str, spec_name: str, spec: SpecResolver, ours: OursResolver) -> list[str]:
    found: list[str] = []
    mine_schema = DEFS[ours_name]
    spec_schema = spec.lookup(spec_name)
    if mine_schema.get("type") == "array" or spec.deref(spec_schema).get("type") == "array":
        a, b = ours.shape(mine_schema.get("items", {})), spec.shape(spec.deref(spec_schema).get("items", {}))
        if a.types != b.types:
            found.append(f"{ours_name}.items: ours {a.describe()}, spec {b.describe()}")
        return found
    mine, theirs = ours.flatten(mine_schema), spec.flatten(spec_schema)
    for name in sorted(theirs.required - mine.required):
        found.append(f"{ours_name}.required.{name}: required by the spec, not by ours")
    for name in sorted(mine.required - theirs.required):
        found.append(f"{ours_name}.required.{name}: required by ours, not by the spec")
    for name in sorted(set(theirs.properties) - set(mine.properties)):
        found.append(f"{ours_name}.{name}: in the spec, not in ours")
    for name in sorted(set(mine.properties) - set(theirs.properties)):
        found.append(f"{ours_name}.{name}: in ours, not in the spec")
    for name in sorted(set(mine.properties) & set(theirs.properties)):
        a, b = ours.shape(mine.properties[name]), spec.shape(theirs.properties[name])
        if a.types != b.types or a.nullable != b.nullable or (a.enum != b.enum and b.enum is not None):
            found.append(f"{ours_name}.{name}: ours {a.describe()}, spec {b.describe()}")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        spec_doc = load_spec(Path(argv[1]))
        spec_doc["components"]["schemas"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        print(f"cannot read the spec at {argv[1]}: {exc}", file=sys.stderr)
        return 2
    spec = SpecResolver(spec_doc, "#/components/schemas/")
    ours = OursResolver(DEFS, "#/$defs/")
    unknown = 0
    for ours_name, spec_name in SPEC_COMPONENTS.items():
        if spec_name is None:
            print(f"{ours_name}: not in the spec (docs only), not compared")
            continue
        if spec_name not in spec_doc["components"]["schemas"]:
            print(f"{ours_name}: the spec has no component {spec_name}")
            unknown += 1
            continue
        differences = compare(ours_name, spec_name, spec, ours)
        if not differences:
            print(f"{ours_name}: matches {spec_name}")
        for line in differences:
            key = line.split(":", 1)[0]
            if key in KNOWN_DEVIATIONS:
                print(f"  known   {line} ({KNOWN_DEVIATIONS[key]})")
            else:
                print(f"  DIFFERS {line}")
                unknown += 1
    print(f"{unknown} unexplained difference(s)")
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
