"""ShipStation carrier/service codes -> NAV Shipping Agent / Agent Service codes.

Fulfillment carriers are free text ("FedEx", "U.S.P.S."), so lookups compare a folded form of
the carrier code and every alias. A carrier or service that is not in the file is "unmapped":
the caller still writes tracking and records why the agent or service was left alone.
"""

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

NAV_CODE_MAX = 10  # Shipping Agent (Service) Code is Code[10] in NAV and BC


class MappingError(ValueError):
    """The mapping file cannot be used; the message says where and why."""


def fold(text: str) -> str:
    """Case, spaces and punctuation do not distinguish carriers ("Fed-Ex " == "fedex")."""
    return re.sub(r"[^0-9a-z]", "", text.casefold())


@dataclass(frozen=True)
class CarrierRule:
    code: str
    agent: str
    aliases: tuple[str, ...] = ()
    services: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentChoice:
    agent: str | None
    service: str | None
    agent_reason: str | None  # why the agent is not set (None when it is)
    service_reason: str | None


@dataclass(frozen=True)
class CarrierMapping:
    rules: tuple[CarrierRule, ...]
    source: str

    def rule_for(self, carrier: str | None) -> CarrierRule | None:
        if not carrier:
            return None
        key = fold(carrier)
        for rule in self.rules:
            if key == fold(rule.code) or key in {fold(a) for a in rule.aliases}:
                return rule
        return None

    def choose(self, carrier: str | None, service: str | None) -> AgentChoice:
        rule = self.rule_for(carrier)
        if rule is None:
            why = f"carrier {carrier!r} is not in the carrier mapping ({self.source})"
            if not carrier:
                why = "the label has no carrier code"
            return AgentChoice(None, None, why, "no shipping agent")
        if not service:
            return AgentChoice(rule.agent, None, None, "the shipment has no service code")
        folded = {fold(k): v for k, v in rule.services.items()}
        mapped = folded.get(fold(service))
        if mapped is None:
            return AgentChoice(
                rule.agent, None, None, f"service {service!r} of {rule.code} is not in the carrier mapping"
            )
        return AgentChoice(rule.agent, mapped, None, None)


def _parse(data: object, source: str) -> CarrierMapping:
    if not isinstance(data, dict) or not isinstance(data.get("carriers"), dict):
        raise MappingError(f"{source}: expected a top-level 'carriers:' mapping")
    rules = []
    for code, body in data["carriers"].items():
        if not isinstance(body, dict) or not isinstance(body.get("agent"), str) or not body["agent"].strip():
            raise MappingError(f"{source}: carrier {code!r} needs 'agent: <NAV Shipping Agent Code>'")
        agent = body["agent"].strip().upper()
        aliases = body.get("aliases") or []
        services = body.get("services") or {}
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise MappingError(f"{source}: carrier {code!r}: 'aliases' must be a list of strings")
        if not isinstance(services, dict):
            raise MappingError(f"{source}: carrier {code!r}: 'services' must map service codes to NAV codes")
        clean_services = {}
        for svc, nav_code in services.items():
            if not isinstance(nav_code, str) or not nav_code.strip():
                raise MappingError(f"{source}: carrier {code!r}: service {svc!r} needs a NAV code")
            clean_services[str(svc)] = nav_code.strip().upper()
        for nav_code in (agent, *clean_services.values()):
            if len(nav_code) > NAV_CODE_MAX:
                raise MappingError(
                    f"{source}: NAV code {nav_code!r} is longer than {NAV_CODE_MAX} characters"
                )
        rules.append(CarrierRule(str(code), agent, tuple(aliases), clean_services))
    return CarrierMapping(tuple(rules), source)


def load_mapping(path: Path | None = None) -> CarrierMapping:
    """The operator's file when given (it replaces the defaults), else the built-in defaults."""
    if path is None:
        text = resources.files("shipnav_dagster").joinpath("carrier_mapping.yaml").read_text()
        source = "built-in default mapping"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingError(f"SHIPNAV_MAPPING_FILE {path}: {exc.strerror}") from None
        source = f"SHIPNAV_MAPPING_FILE {path}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"{source}: not valid YAML ({exc})") from None
    return _parse(data, source)
