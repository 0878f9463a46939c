"""One OData request as the emulator handles it, whether it came over HTTP or inside a $batch."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl


@dataclass
class Operation:
    method: str
    raw_path: str  # percent-encoded, as sent, without the query string
    query: str  # the raw query string
    base_url: str  # scheme://host[:port] the client addressed
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    @property
    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())
