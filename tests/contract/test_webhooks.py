"""The webhook receiver over real HTTP, the inbox queue on SQLite and PostgreSQL, and subscribe.

The receiver runs in uvicorn on a thread (port 0) with a tmp SQLite ledger. URLs that must be
refused are pointed at a local listener we control, which proves they are never requested.
"""

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from shipnav_dagster.ledger import schema as t
from shipnav_dagster.ledger.inbox import (
    CLAIM_TIMEOUT,
    MAX_ATTEMPTS,
    claim_pending,
    counts_by_status,
    has_pending,
    mark_done,
    mark_failed,
    pending_count,
    store_notification,
)
from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.server import ThreadedServer as ReceiverThread
from shipnav_dagster.sandbox.state import SandboxWorld
from shipnav_dagster.settings import Settings
from shipnav_dagster.webhooks.app import MAX_BODY_BYTES, app_from_settings, create_app
from shipnav_dagster.webhooks.policy import is_allowed_resource_url, resource_url_problem
from shipnav_dagster.webhooks.subscribe import (
    TargetUrlError,
    check_target_url,
    redact_target_url,
    run_subscribe,
    subscribe,
)

TOKEN = "s3cret-Token-0123456789abcdef"
V1 = "https://ssapi.shipstation.com"
SHIP_URL = f"{V1}/shipments?batchId=144015674&includeShipmentItems=False"


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


class Listener:
    """A local HTTP server that counts every connection made to it (TLS attempts included)."""

    def __init__(self) -> None:
        self.connections = 0
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                body = b'{"shipments": [], "total": 0, "page": 1, "pages": 0}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def process_request(self, request: Any, client_address: Any) -> None:
                outer.connections += 1
                super().process_request(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@dataclass
class Receiver:
    url: str
    ledger: Ledger

    def endpoint(self, token: str = TOKEN) -> str:
        return f"{self.url}/webhooks/shipstation/{token}"

    def post(self, payload: Any, token: str = TOKEN) -> httpx.Response:
        return httpx.post(self.endpoint(token), json=payload, timeout=10)

    def post_raw(self, content: Any, token: str = TOKEN, **headers: str) -> httpx.Response:
        return httpx.post(self.endpoint(token), content=content, headers=headers, timeout=10)

    def rows(self) -> list[Any]:
        with self.ledger.engine.connect() as conn:
            return list(conn.execute(sa.select(t.inbox).order_by(t.inbox.c.id)).all())


StartReceiver = Callable[..., Receiver]


@pytest.fixture
def start_receiver(tmp_path: Path) -> Iterator[StartReceiver]:
    """Start receivers with a given API URL and token; each gets its own SQLite ledger."""
    started: list[tuple[ReceiverThread, Ledger]] = []

    def start(api_url: str = V1, token: str | None = TOKEN, **options: Any) -> Receiver:
        ledger = Ledger(f"sqlite:///{tmp_path / f'ledger-{len(started)}.db'}")
        # uvicorn at "info", as `shipnav webhooks serve` runs it, so its access logger is live.
        thread = ReceiverThread(
            create_app(token=token, api_url=api_url, ledger=ledger, **options), log_level="info"
        )
        started.append((thread, ledger))
        thread.start()
        return Receiver(thread.url, ledger)

    yield start
    for thread, ledger in started:
        thread.stop()
        ledger.dispose()


@pytest.fixture
def receiver(start_receiver: StartReceiver) -> Receiver:
    return start_receiver()


def notification(url: str = SHIP_URL, kind: str = "SHIP_NOTIFY") -> dict[str, str]:
    return {"resource_url": url, "resource_type": kind}


def raw_status(base_url: str, head: bytes, body_parts: tuple[bytes, ...] = ()) -> int:
    """Send bytes exactly as given and return the status code of the answer.

    The socket timeout is only a guard against a hang, not a timing assertion.
    """
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def request_head(path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


# --------------------------------------------------------------------------------------------
# Receiving
# --------------------------------------------------------------------------------------------


def test_valid_ship_notify_is_queued_once(receiver: Receiver) -> None:
    response = receiver.post(notification())
    assert response.status_code == 200
    assert response.json() == {"status": "queued"}
    [row] = receiver.rows()
    assert (row.resource_type, row.resource_url, row.status, row.attempts) == (
        "SHIP_NOTIFY",
        SHIP_URL,
        "pending",
        0,
    )
    assert has_pending(receiver.ledger)


def test_duplicate_is_stored_once(receiver: Receiver) -> None:
    assert receiver.post(notification()).json() == {"status": "queued"}
    again = receiver.post(notification())
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    assert len(receiver.rows()) == 1
    # The same URL for another event is another notification.
    other = receiver.post(notification(kind="ITEM_SHIP_NOTIFY"))
    assert other.json() == {"status": "queued"}
    assert len(receiver.rows()) == 2


def test_order_notify_on_a_shard_host_is_accepted(receiver: Receiver) -> None:
    url = "https://ssapi11.shipstation.com/orders?storeID=123456&importBatch=1f2e-3d4c"
    response = receiver.post(notification(url, "ORDER_NOTIFY"))
    assert response.status_code == 200, response.text
    assert [r.resource_url for r in receiver.rows()] == [url]


@pytest.mark.parametrize(
    "token",
    [
        "wrong-token",
        TOKEN[:-1],
        TOKEN + "x",
        TOKEN.upper(),
        "%20" + TOKEN,
        "",
    ],
    ids=["other", "prefix", "longer", "case", "padded", "empty"],
)
def test_wrong_token_is_404_and_stores_nothing(receiver: Receiver, token: str) -> None:
    response = receiver.post(notification(), token=token)
    assert response.status_code == 404
    assert TOKEN not in response.text
    assert receiver.rows() == []


def test_wrong_token_looks_like_an_unknown_path(receiver: Receiver) -> None:
    wrong = receiver.post(notification(), token="nope")
    unknown = httpx.post(f"{receiver.url}/somewhere/else", json=notification(), timeout=10)
    assert (wrong.status_code, wrong.content) == (unknown.status_code, unknown.content)


def test_no_configured_token_refuses_everything(start_receiver: StartReceiver) -> None:
    receiver = start_receiver(token=None)
    for token in (TOKEN, "None", ""):
        assert receiver.post(notification(), token=token).status_code == 404
    assert receiver.rows() == []


def test_app_from_settings_without_token_refuses(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, shipnav_database_url=f"sqlite:///{tmp_path / 'l.db'}")  # type: ignore[call-arg]
    with ReceiverThread(app_from_settings(settings)) as url:
        response = httpx.post(f"{url}/webhooks/shipstation/None", json=notification(), timeout=10)
    assert response.status_code == 404


def test_other_paths_and_methods(receiver: Receiver) -> None:
    get = httpx.get(receiver.endpoint(), timeout=10)
    assert (get.status_code, get.headers.get("allow")) == (405, "POST")
    assert httpx.put(receiver.endpoint(), json=notification(), timeout=10).status_code == 405
    assert (
        httpx.post(f"{receiver.url}/webhooks/shipstation", json=notification(), timeout=10).status_code == 404
    )
    assert httpx.post(f"{receiver.endpoint()}/extra", json=notification(), timeout=10).status_code == 404
    assert httpx.post(f"{receiver.url}/", json=notification(), timeout=10).status_code == 404
    health = httpx.get(f"{receiver.url}/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert receiver.rows() == []


def test_foreign_resource_urls_are_refused_and_never_requested(
    start_receiver: StartReceiver, listener: Listener
) -> None:
    local = f"127.0.0.1:{listener.port}"
    cases = {
        # configured API URL -> resource_urls that must be refused
        V1: [
            f"http://{local}/shipments?batchId=1",
            f"https://{local}/shipments?batchId=1",
            "http://169.254.169.254/latest/meta-data/",
            "https://169.254.169.254/shipments",
            "https://ssapi.shipstation.com.evil/shipments?batchId=1",
            "https://evil.com/ssapi.shipstation.com/shipments",
            "https://user@ssapi.shipstation.com/shipments",
            f"https://ssapi.shipstation.com@{local}/shipments",
            f"https://ssapi.shipstation.com:443@{local}/shipments",
            "http://ssapi.shipstation.com/shipments?batchId=1",
            "https://ssapi.shipstation.com:8443/shipments",
            "https://ssapi.shipstation.com/webhooks",
            "https://ssapi.shipstation.com/shipments/../webhooks",
            "https://xn--sspi-4na.shipstation.com/shipments",
            "https://ssapi\uff0eshipstation\uff0ecom/shipments",
            "//ssapi.shipstation.com/shipments",
            "file:///etc/passwd",
        ],
        # The listener is on another port than the configured API.
        "http://127.0.0.1:9": [f"http://{local}/shipments", f"http://user:pw@{local}/shipments"],
        # The listener's own host and port, but https is configured.
        f"https://{local}": [f"http://{local}/shipments?batchId=1"],
        # The listener is the configured API, but the URL carries credentials or a foreign path.
        f"http://{local}": [f"http://user@{local}/shipments", f"http://{local}/stores"],
    }
    for api_url, urls in cases.items():
        receiver = start_receiver(api_url=api_url)
        for url in urls:
            response = receiver.post(notification(url))
            assert response.status_code == 400, (api_url, url, response.text)
            assert "resource_url" in response.json()["error"]
        assert receiver.rows() == [], api_url
    assert listener.connections == 0
    assert listener.paths == []


def test_receiver_never_fetches_even_an_allowed_url(
    start_receiver: StartReceiver, listener: Listener
) -> None:
    """The listener *is* the configured API here: storing must still make no request to it."""
    receiver = start_receiver(api_url=f"http://127.0.0.1:{listener.port}")
    url = f"http://127.0.0.1:{listener.port}/shipments?batchId=7&includeShipmentItems=False"
    assert receiver.post(notification(url)).json() == {"status": "queued"}
    assert len(receiver.rows()) == 1
    assert listener.connections == 0


def test_body_at_the_limit_is_accepted(receiver: Receiver) -> None:
    body = json.dumps(notification()).encode()
    padded = body[:-1] + b" " * (MAX_BODY_BYTES - len(body)) + b"}"
    assert len(padded) == MAX_BODY_BYTES
    assert receiver.post_raw(padded).status_code == 200


def test_oversize_body_with_honest_content_length(receiver: Receiver) -> None:
    big = json.dumps({**notification(), "pad": "x" * MAX_BODY_BYTES}).encode()
    response = receiver.post_raw(big, **{"Content-Type": "application/json"})
    assert response.status_code == 413
    assert receiver.rows() == []


def test_oversize_content_length_is_refused_before_the_body_arrives(receiver: Receiver) -> None:
    # Ten megabytes announced, nothing sent: an answer proves the receiver did not wait for them.
    head = request_head(f"/webhooks/shipstation/{TOKEN}", Content_Length=str(10 * 1024 * 1024))
    assert raw_status(receiver.url, head) == 413
    assert receiver.rows() == []


def test_oversize_chunked_body_is_counted_while_streaming(receiver: Receiver) -> None:
    """No Content-Length at all: the receiver stops at the limit, before the body even ends."""
    head = request_head(f"/webhooks/shipstation/{TOKEN}", Transfer_Encoding="chunked")
    parts = tuple(chunk(b" " * 8192) for _ in range(MAX_BODY_BYTES // 8192 + 2))
    # The terminating zero-length chunk is never sent: only a streaming check can answer.
    assert raw_status(receiver.url, head, parts) == 413
    assert receiver.rows() == []


def test_oversize_chunked_body_via_client(receiver: Receiver) -> None:
    payload = json.dumps({**notification(), "pad": "x" * MAX_BODY_BYTES}).encode()

    def stream() -> Iterator[bytes]:
        for i in range(0, len(payload), 4096):
            yield payload[i : i + 4096]

    response = receiver.post_raw(stream())
    assert response.status_code == 413
    assert receiver.rows() == []


def test_a_trickled_body_times_out(start_receiver: StartReceiver) -> None:
    """A client that announces a body and never finishes it does not hold the request forever."""
    receiver = start_receiver(body_read_timeout=0.3)
    head = request_head(f"/webhooks/shipstation/{TOKEN}", Content_Length="100")
    assert raw_status(receiver.url, head, (b'{"resource_url": ',)) == 408
    assert receiver.rows() == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"not json",
        b"\xff\xfe\x00",
        b"[]",
        b'"SHIP_NOTIFY"',
        b"null",
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps({"resource_url": SHIP_URL}).encode(),
        json.dumps({"resource_type": "SHIP_NOTIFY"}).encode(),
        json.dumps({"resource_url": SHIP_URL, "resource_type": "FULFILLMENT_SHIPPED"}).encode(),
        json.dumps({"resource_url": SHIP_URL, "resource_type": "ship_notify"}).encode(),
        json.dumps({"resource_url": SHIP_URL, "resource_type": None}).encode(),
        json.dumps({"resource_url": SHIP_URL, "resource_type": ["SHIP_NOTIFY"]}).encode(),
        json.dumps({"resource_url": SHIP_URL, "resource_type": {"a": 1}}).encode(),
        b'{"resource_url": "'
        + SHIP_URL.encode()
        + b'", "resource_type": "SHIP_NOTIFY", "n": '
        + b"1" * 5000
        + b"}",
        json.dumps({"resource_url": 12345, "resource_type": "SHIP_NOTIFY"}).encode(),
        json.dumps({"resource_url": "", "resource_type": "SHIP_NOTIFY"}).encode(),
        json.dumps({"resource_url": [SHIP_URL], "resource_type": "SHIP_NOTIFY"}).encode(),
        json.dumps({"resource_url": f"{SHIP_URL}&x={'a' * 2048}", "resource_type": "SHIP_NOTIFY"}).encode(),
    ],
    ids=[
        "empty",
        "truncated",
        "text",
        "binary",
        "list",
        "string",
        "null",
        "deeply-nested",
        "no-type",
        "no-url",
        "unknown-type",
        "lowercase-type",
        "null-type",
        "list-type",
        "object-type",
        "huge-number",
        "number-url",
        "empty-url",
        "list-url",
        "too-long-url",
    ],
)
def test_invalid_bodies_are_400_with_a_json_error(receiver: Receiver, body: bytes) -> None:
    # The deeply nested one is 200 KB: it must be refused as oversize instead.
    response = receiver.post_raw(body, **{"Content-Type": "application/json"})
    assert response.status_code in (400, 413)
    assert response.status_code == (413 if len(body) > MAX_BODY_BYTES else 400)
    assert isinstance(response.json()["error"], str)
    assert receiver.rows() == []


def test_deeply_nested_json_within_the_limit_is_400(receiver: Receiver) -> None:
    body = b"[" * 30_000 + b"]" * 30_000
    response = receiver.post_raw(body)
    assert response.status_code == 400
    assert receiver.rows() == []


def test_the_token_is_never_logged(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.post(notification())
    receiver.post(notification("http://169.254.169.254/latest/meta-data/"))
    receiver.post_raw(b"{")
    httpx.get(receiver.endpoint(), timeout=10)
    # httpx and httpcore are this test's own client, which of course knows the URL.
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    messages = [record.getMessage() for record in server_side]
    assert any("rejected SHIP_NOTIFY" in m and "169.254.169.254" in m for m in messages)
    assert any("/webhooks/shipstation/***" in m for m in messages)  # the redacted access log
    assert not any(TOKEN in m for m in messages)


def test_a_reenabled_uvicorn_access_log_is_redacted(receiver: Receiver) -> None:
    """An operator's logging config may turn uvicorn's access log back on: still no token."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    try:
        receiver.post(notification())
        receiver.post(notification(), token="guess")
    finally:
        access.removeHandler(handler)
    lines = [record.getMessage() for record in records]
    assert lines, "uvicorn wrote no access log line; the test proves nothing"
    assert all("/webhooks/shipstation/***" in line and TOKEN not in line for line in lines)


# --------------------------------------------------------------------------------------------
# is_allowed_resource_url
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "api_url"),
    [
        (SHIP_URL, V1),
        ("https://ssapi.shipstation.com/shipments?storeID=171654&includeShipmentItems=False", V1),
        ("https://ssapi11.shipstation.com/shipments?storeID=171654&includeShipmentItems=False", V1),
        ("https://ssapi6.shipstation.com/orders?storeID=123456&importBatch=ab-12", V1),
        ("https://SSAPI.ShipStation.com/shipments", V1),
        ("HTTPS://ssapi.shipstation.com/shipments", V1),
        ("https://ssapi.shipstation.com:443/shipments", V1),
        ("https://ssapi.shipstation.com/shipments", V1 + "/"),
        ("https://ssapi.shipstation.com/orders/123456", V1),
        ("http://127.0.0.1:8123/shipments?batchId=1", "http://127.0.0.1:8123"),
        ("http://localhost/orders?importBatch=x", "http://localhost:80"),
        ("https://proxy.example.com/ss/shipments?batchId=1", "https://proxy.example.com/ss"),
    ],
)
def test_allowed_resource_urls(url: str, api_url: str) -> None:
    assert resource_url_problem(url, api_url) is None
    assert is_allowed_resource_url(url, api_url)


@pytest.mark.parametrize(
    ("url", "api_url"),
    [
        ("http://127.0.0.1/shipments", V1),
        ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", V1),
        ("https://ssapi.shipstation.com.evil/shipments", V1),
        ("https://ssapi.shipstation.com.evil.com/shipments", V1),
        ("https://evilssapi.shipstation.com/shipments", V1),
        ("https://ssapi11.shipstation.com.evil/shipments", V1),
        ("https://ssapiX.shipstation.com/shipments", V1),
        ("https://ssapi-1.shipstation.com/shipments", V1),
        ("https://shipstation.com/shipments", V1),
        ("https://evil.com/ssapi.shipstation.com/shipments", V1),
        ("https://evil.com/?https://ssapi.shipstation.com/shipments", V1),
        ("https://user@ssapi.shipstation.com/shipments", V1),
        ("https://user:pw@ssapi.shipstation.com/shipments", V1),
        ("https://ssapi.shipstation.com@evil.com/shipments", V1),
        ("https://ssapi.shipstation.com%40evil.com/shipments", V1),
        ("https://ssapi.shipstation.com\\@evil.com/shipments", V1),
        ("https://ssapi.shipstation.com./shipments", V1),
        ("http://ssapi.shipstation.com/shipments", V1),
        ("ftp://ssapi.shipstation.com/shipments", V1),
        ("https://ssapi.shipstation.com:80/shipments", V1),
        ("https://ssapi.shipstation.com:8443/shipments", V1),
        ("https://ssapi.shipstation.com:99999/shipments", V1),
        ("https://ssapi.shipstation.com:443:80/shipments", V1),
        ("https://ssapi.shipstation.com/", V1),
        ("https://ssapi.shipstation.com/stores", V1),
        ("https://ssapi.shipstation.com/webhooks/subscribe", V1),
        ("https://ssapi.shipstation.com/shipmentsX", V1),
        ("https://ssapi.shipstation.com/shipments/../webhooks", V1),
        ("https://ssapi.shipstation.com/shipments/%2e%2e/webhooks", V1),
        ("https://ssapi.shipstation.com/shipments#frag", V1),
        ("https://ssapi.shipstation.com//shipments", V1),
        ("https://ssаpi.shipstation.com/shipments", V1),  # Cyrillic "а"
        ("https://ssapi\uff0eshipstation\uff0ecom/shipments", V1),  # full-width dots
        ("https://xn--ssapi-xyz.shipstation.com/shipments", V1),
        ("https://ssapi.shipstation.com/shipments\n", V1),
        (" https://ssapi.shipstation.com/shipments", V1),
        ("https://ssapi.shipstation.com/ship\tments", V1),
        ("//ssapi.shipstation.com/shipments", V1),
        ("/shipments", V1),
        ("https://[::1]/shipments", V1),
        ("https://ssapi.shipstation.com/shipments?" + "a" * 2048, V1),
        # A configured proxy or sandbox gets no shards.
        ("https://ssapi11.shipstation.com/shipments", "https://proxy.example.com"),
        ("http://127.0.0.1:8124/shipments", "http://127.0.0.1:8123"),
        ("http://127.0.0.2:8123/shipments", "http://127.0.0.1:8123"),
        ("https://127.0.0.1:8123/shipments", "http://127.0.0.1:8123"),
        ("https://proxy.example.com/shipments", "https://proxy.example.com/ss"),
        ("https://proxy.example.com/ssx/shipments", "https://proxy.example.com/ss"),
        (SHIP_URL, "not a url"),
    ],
)
def test_refused_resource_urls(url: str, api_url: str) -> None:
    assert resource_url_problem(url, api_url) is not None
    assert not is_allowed_resource_url(url, api_url)


@pytest.mark.parametrize("value", [None, 42, b"https://ssapi.shipstation.com/shipments", ["x"], ""])
def test_non_string_resource_urls_are_refused(value: object) -> None:
    assert not is_allowed_resource_url(value, V1)


# --------------------------------------------------------------------------------------------
# The inbox queue (SQLite here, PostgreSQL below)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'inbox.db'}").create_all()
    yield ledger
    ledger.dispose()


def _status(ledger: Ledger, item_id: int) -> Any:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(t.inbox).where(t.inbox.c.id == item_id)).one()


def test_claim_and_finish(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    assert not has_pending(ledger)
    assert pending_count(ledger) == 0
    for n in range(3):
        assert store_notification(ledger, "SHIP_NOTIFY", f"{V1}/shipments?batchId={n}")
    assert not store_notification(ledger, "SHIP_NOTIFY", f"{V1}/shipments?batchId=0")
    assert pending_count(ledger) == 3

    first = claim_pending(ledger, "run-1", limit=2)
    assert [i.resource_url for i in first] == [f"{V1}/shipments?batchId={n}" for n in (0, 1)]
    assert all(i.attempts == 1 and i.claimed_by_run == "run-1" for i in first)
    assert first[0].received_at.tzinfo is not None
    second = claim_pending(ledger, "run-2")
    assert [i.resource_url for i in second] == [f"{V1}/shipments?batchId=2"]
    assert claim_pending(ledger, "run-3") == []
    assert not has_pending(ledger)

    mark_done(ledger, first[0].id, records_found=4)
    row = _status(ledger, first[0].id)
    assert (row.status, row.records_found, row.error) == ("done", 4, None)
    assert row.processed_at is not None
    assert counts_by_status(ledger) == {"done": 1, "claimed": 2}
    # A done notification delivered again stays done (stored once).
    assert not store_notification(ledger, "SHIP_NOTIFY", f"{V1}/shipments?batchId=0")


def test_failures_retry_until_max_attempts(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    store_notification(ledger, "ORDER_NOTIFY", f"{V1}/orders?importBatch=x")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        [item] = claim_pending(ledger, f"run-{attempt}")
        assert item.attempts == attempt
        status = mark_failed(ledger, item.id, f"boom {attempt}")
        assert status == ("failed" if attempt == MAX_ATTEMPTS else "pending")
    row = _status(ledger, item.id)
    assert (row.status, row.error, row.claimed_by_run) == ("failed", f"boom {MAX_ATTEMPTS}", None)
    assert claim_pending(ledger, "run-x") == []
    assert not has_pending(ledger)
    with pytest.raises(KeyError):
        mark_failed(ledger, 999_999, "no such row")


def test_final_failure_and_row_access(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    store_notification(ledger, "SHIP_NOTIFY", SHIP_URL)
    [item] = claim_pending(ledger, "run-1")
    assert (item["id"], item["resource_url"], item["resource_type"]) == (item.id, SHIP_URL, "SHIP_NOTIFY")
    with pytest.raises(KeyError):
        item["nope"]
    assert mark_failed(ledger, item["id"], "refused by the re-check", final=True) == "failed"
    assert _status(ledger, item.id).processed_at is not None
    assert not has_pending(ledger)


def test_stale_claims_are_taken_over(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    store_notification(ledger, "SHIP_NOTIFY", SHIP_URL)
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    [item] = claim_pending(ledger, "crashed", now=start)
    # Still within the hour: the claimant may be alive.
    soon = start + CLAIM_TIMEOUT - timedelta(minutes=1)
    assert not has_pending(ledger, now=soon)
    assert claim_pending(ledger, "other", now=soon) == []
    # Past the hour: the run is presumed dead.
    later = start + CLAIM_TIMEOUT + timedelta(minutes=1)
    assert has_pending(ledger, now=later)
    assert pending_count(ledger, now=later) == 1
    [again] = claim_pending(ledger, "rescuer", now=later)
    assert (again.id, again.attempts, again.claimed_by_run) == (item.id, 2, "rescuer")


def test_a_notification_that_keeps_crashing_runs_is_failed(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    store_notification(ledger, "SHIP_NOTIFY", SHIP_URL)
    now = datetime(2025, 3, 1, tzinfo=UTC)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        [item] = claim_pending(ledger, f"crash-{attempt}", now=now)
        assert item.attempts == attempt
        now += CLAIM_TIMEOUT * 2
    assert claim_pending(ledger, "next", now=now) == []
    row = _status(ledger, item.id)
    assert row.status == "failed"
    assert "never finished" in row.error


# --------------------------------------------------------------------------------------------
# PostgreSQL: store once, SKIP LOCKED claims from two connections
# --------------------------------------------------------------------------------------------


@pytest.mark.timeout(120)  # a claim blocked on a lock would hang; fail instead
def test_postgres_store_once_and_skip_locked_claims(pg_schema_url: str) -> None:
    ledger = Ledger(pg_schema_url).create_all()
    try:
        urls = [f"{V1}/shipments?batchId={n}" for n in range(6)]
        assert all(store_notification(ledger, "SHIP_NOTIFY", url) for url in urls)
        assert not any(store_notification(ledger, "SHIP_NOTIFY", url) for url in urls)
        assert pending_count(ledger) == 6

        with ledger.engine.connect() as holder:
            # Another run's claim in flight: its transaction holds the two oldest rows.
            tx = holder.begin()
            locked = (
                holder.execute(sa.select(t.inbox.c.id).order_by(t.inbox.c.id).limit(2).with_for_update())
                .scalars()
                .all()
            )
            taken = claim_pending(ledger, "run-b", limit=3)  # another pooled connection
            assert [i.resource_url for i in taken] == urls[2:5]
            tx.commit()

        rest = claim_pending(ledger, "run-c")
        assert [i.id for i in rest][:2] == locked
        assert [i.resource_url for i in rest] == [*urls[:2], urls[5]]
        assert counts_by_status(ledger) == {"claimed": 6}
    finally:
        ledger.dispose()


@pytest.mark.timeout(120)
def test_postgres_concurrent_claims_are_disjoint(pg_schema_url: str) -> None:
    ledger = Ledger(pg_schema_url).create_all()
    try:
        for n in range(40):
            store_notification(ledger, "ORDER_NOTIFY", f"{V1}/orders?importBatch={n}")
        barrier = threading.Barrier(4)
        claimed: dict[str, list[int]] = {}

        def worker(name: str) -> None:
            barrier.wait()
            ids: list[int] = []
            while batch := claim_pending(ledger, name, limit=3):
                ids += [i.id for i in batch]
            claimed[name] = ids

        threads = [threading.Thread(target=worker, args=(f"run-{k}",)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        every = [i for ids in claimed.values() for i in ids]
        assert len(every) == len(set(every)) == 40
    finally:
        ledger.dispose()


# --------------------------------------------------------------------------------------------
# Subscribe
# --------------------------------------------------------------------------------------------


def _sandbox_settings(sandbox: SandboxServers, world: SandboxWorld, **extra: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        shipstation_api_url=sandbox.shipstation_url,
        shipstation_api_key=world.shipstation.api_key,
        shipstation_api_secret=world.shipstation.api_secret,
        shipnav_webhook_token=TOKEN,
        **extra,
    )


TARGET = f"https://hooks.example.com/webhooks/shipstation/{TOKEN}"


def test_subscribe_registers_both_events(sandbox: SandboxServers, empty_world: SandboxWorld) -> None:
    settings = _sandbox_settings(sandbox, empty_world)
    result = subscribe(settings, TARGET)
    assert result.reminders == []
    hooks = empty_world.shipstation.webhooks
    assert sorted(h["HookType"] for h in hooks.values()) == ["ORDER_NOTIFY", "SHIP_NOTIFY"]
    assert {h["Url"] for h in hooks.values()} == {TARGET}
    assert {s.webhook_id for s in result.subscriptions} == set(hooks)
    assert all(s.created for s in result.subscriptions)

    # Again: reused, not doubled (ShipStation would otherwise deliver everything twice).
    again = subscribe(settings, TARGET)
    assert len(hooks) == 2
    assert {s.webhook_id for s in again.subscriptions} == set(hooks)
    assert not any(s.created for s in again.subscriptions)


def test_subscribe_for_one_store(sandbox: SandboxServers, empty_world: SandboxWorld) -> None:
    subscribe(_sandbox_settings(sandbox, empty_world), TARGET, store_id=171654)
    assert {h["StoreID"] for h in empty_world.shipstation.webhooks.values()} == {171654}


def test_run_subscribe_prints_ids_but_never_the_token(
    sandbox: SandboxServers, empty_world: SandboxWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_subscribe(_sandbox_settings(sandbox, empty_world), TARGET) == 0
    out, err = capsys.readouterr()
    for hook_id in empty_world.shipstation.webhooks:
        assert str(hook_id) in out
    assert "SHIP_NOTIFY" in out and "ORDER_NOTIFY" in out
    assert TOKEN not in out + err
    assert "/webhooks/shipstation/***" in out


@pytest.mark.parametrize(
    "target",
    [
        f"http://hooks.example.com/webhooks/shipstation/{TOKEN}",
        f"ftp://hooks.example.com/webhooks/shipstation/{TOKEN}",
        "hooks.example.com/webhooks/shipstation/x",
        f"https://user:pw@hooks.example.com/webhooks/shipstation/{TOKEN}",
    ],
)
def test_subscribe_refuses_unsafe_targets(
    sandbox: SandboxServers, empty_world: SandboxWorld, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _sandbox_settings(sandbox, empty_world)
    with pytest.raises(TargetUrlError):
        subscribe(settings, target)
    assert run_subscribe(settings, target) == 2
    assert empty_world.shipstation.webhooks == {}
    assert TOKEN not in "".join(capsys.readouterr())


def test_subscribe_allows_plain_http_on_localhost(sandbox: SandboxServers, empty_world: SandboxWorld) -> None:
    target = f"http://localhost:8787/webhooks/shipstation/{TOKEN}"
    subscribe(_sandbox_settings(sandbox, empty_world), target)
    assert len(empty_world.shipstation.webhooks) == 2


def test_subscribe_reminds_about_the_token() -> None:
    assert check_target_url(TARGET, TOKEN) == []
    [reminder] = check_target_url("https://hooks.example.com/webhooks/shipstation/other", TOKEN)
    assert "include the token" in reminder
    [unset] = check_target_url(TARGET, None)
    assert "SHIPNAV_WEBHOOK_TOKEN" in unset


def test_redact_target_url() -> None:
    assert redact_target_url(TARGET, TOKEN) == "https://hooks.example.com/webhooks/shipstation/***"
    assert TOKEN not in redact_target_url(f"https://h.example.com/in/{TOKEN}/x?k={TOKEN}", TOKEN)


# --------------------------------------------------------------------------------------------
# serve(): the real process with its real logging configuration
# --------------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_serve_end_to_end_without_leaking_the_token(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SHIPNAV_WEBHOOK_TOKEN": TOKEN,
        "SHIPNAV_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "SHIPSTATION_API_VERSION": "v1",
        "SHIPSTATION_API_URL": V1,
        "PYTHONUNBUFFERED": "1",
    }
    code = "from shipnav_dagster.webhooks.serve import serve; serve('127.0.0.1', 0)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=tmp_path,  # no stray .env
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            found = re.search(r"running on http://127\.0\.0\.1:(\d+)", line, re.IGNORECASE)
            if found:
                base = f"http://127.0.0.1:{found[1]}"
                break
        else:
            pytest.fail("serve() did not start:\n" + "".join(output))
        endpoint = f"{base}/webhooks/shipstation/{TOKEN}"
        assert httpx.post(endpoint, json=notification(), timeout=10).json() == {"status": "queued"}
        assert httpx.post(endpoint, json=notification("http://127.0.0.1/x"), timeout=10).status_code == 400
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        output.append(rest)
    text = "".join(output)
    assert "queued SHIP_NOTIFY notification" in text
    assert "rejected SHIP_NOTIFY" in text
    assert "/webhooks/shipstation/***" in text
    assert TOKEN not in text
    ledger = Ledger(env["SHIPNAV_DATABASE_URL"])
    try:
        assert pending_count(ledger) == 1
    finally:
        ledger.dispose()
