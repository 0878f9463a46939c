"""The service's CSDL (``$metadata``): which services are published, their properties and lengths."""

import xml.etree.ElementTree as ET
from dataclasses import dataclass


@dataclass(frozen=True)
class EntityType:
    properties: dict[str, int | None]  # property name -> MaxLength (None: not stated / "max")
    navigation: dict[str, str]  # navigation property name -> target entity type name


@dataclass(frozen=True)
class ServiceSchema:
    entity_sets: dict[str, str]  # published service name -> entity type name
    types: dict[str, EntityType]

    def entity(self, service: str) -> EntityType | None:
        type_name = self.entity_sets.get(service)
        return self.types.get(type_name) if type_name else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _type_name(qualified: str) -> str:
    """``Collection(NAV.SalesLines)`` or ``NAV.SalesLines`` -> ``SalesLines``."""
    inner = qualified.removeprefix("Collection(").removesuffix(")")
    return inner.rsplit(".", 1)[-1]


def _max_length(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def parse_metadata(xml_text: str) -> ServiceSchema:
    """The published entity sets and their properties from a CSDL document (any namespace).

    ElementTree does not fetch external entities and Python's expat limits entity expansion, so a
    hostile document cannot make this read files or exhaust memory.
    """
    root = ET.fromstring(xml_text)
    sets: dict[str, str] = {}
    types: dict[str, EntityType] = {}
    for element in root.iter():
        kind = _local(element.tag)
        if kind == "EntitySet" and element.get("Name"):
            sets[element.get("Name", "")] = _type_name(element.get("EntityType", ""))
        elif kind == "EntityType" and element.get("Name"):
            props: dict[str, int | None] = {}
            navigation: dict[str, str] = {}
            for child in element:
                name = child.get("Name")
                if not name:
                    continue
                if _local(child.tag) == "Property":
                    props[name] = _max_length(child.get("MaxLength"))
                elif _local(child.tag) == "NavigationProperty":
                    navigation[name] = _type_name(child.get("Type", ""))
            types[element.get("Name", "")] = EntityType(props, navigation)
    return ServiceSchema(sets, types)
