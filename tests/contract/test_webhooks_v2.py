"""V2 webhooks: the receiver's V2 events, its shared-secret header and RSA signatures, the
resource_url rules on the V2 host, and ``shipnav webhooks subscribe`` against the V2 sandbox."""

import base64
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from shipnav_dagster.ledger.repository import Ledger
from shipnav_dagster.sandbox.server import SandboxServers, ThreadedServer
from shipnav_dagster.sandbox.state import SandboxWorld
from shipnav_dagster.settings import Settings, SettingsError
from shipnav_dagster.webhooks.app import SECRET_HEADER, app_from_settings, create_app
from shipnav_dagster.webhooks.policy import resource_url_problem
from shipnav_dagster.webhooks.signature import SignatureError, SignatureVerifier
from shipnav_dagster.webhooks.subscribe import run_subscribe, subscribe

TOKEN = "v2-path-token-0123456789"
API = "https://api.shipstation.com"
LABELS = f"{API}/v2/labels?batch_id=se-64616278"
FULFILLMENTS = f"{API}/v2/fulfillments?fulfillment_id=se-5501&shipment_id=se-777"


def note(url: str = LABELS, kind: str = "LABEL_CREATED_V2") -> dict[str, str]:
    return {"resource_url": url, "resource_type": kind}


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start a receiver (V2 unless told otherwise); returns its endpoint URL."""
    servers: list[ThreadedServer] = []

    def run(**options: Any) -> str:
        options.setdefault("generation", "v2")
        options.setdefault("api_url", API)
        ledger = Ledger(f"sqlite:///{tmp_path / f'l{len(servers)}.db'}")
        server = ThreadedServer(create_app(token=TOKEN, ledger=ledger, **options))
        servers.append(server)
        return f"{server.__enter__()}/webhooks/shipstation/{TOKEN}"

    yield run
    for server in servers:
        server.stop()


def post(endpoint: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(endpoint, json=body, headers=headers, timeout=10)


# -- events, header, URLs --------------------------------------------------------------------------


def test_v2_events_with_the_header_are_queued_once(start: Callable[..., str]) -> None:
    endpoint = start()
    assert post(endpoint, note(), **{SECRET_HEADER: TOKEN}).json() == {"status": "queued"}
    assert post(endpoint, note(), **{SECRET_HEADER: TOKEN}).json() == {"status": "duplicate"}
    assert post(endpoint, note(FULFILLMENTS, "FULFILLMENT_SHIPPED_V2"), **{SECRET_HEADER: TOKEN}).json() == {
        "status": "queued"
    }


@pytest.mark.parametrize("header", [None, "", "wrong-secret", TOKEN + "x"])
def test_a_v2_notification_without_the_right_header_is_refused(
    start: Callable[..., str], header: str | None
) -> None:
    endpoint = start()
    answer = post(endpoint, note(), **({SECRET_HEADER: header} if header is not None else {}))
    assert answer.status_code == 401 and SECRET_HEADER in answer.json()["error"]


def test_the_header_secret_can_differ_from_the_path_token(start: Callable[..., str]) -> None:
    endpoint = start(header_secret="a-separate-header-secret")
    assert post(endpoint, note(), **{SECRET_HEADER: TOKEN}).status_code == 401
    assert post(endpoint, note(), **{SECRET_HEADER: "a-separate-header-secret"}).status_code == 200


def test_each_generation_takes_its_own_events(start: Callable[..., str]) -> None:
    v2 = start()
    v1_note = {
        "resource_url": "https://ssapi.shipstation.com/shipments?batchId=1",
        "resource_type": "SHIP_NOTIFY",
    }
    refused = post(v2, v1_note, **{SECRET_HEADER: TOKEN})
    assert refused.status_code == 400 and "LABEL_CREATED_V2" in refused.json()["error"]
    v1 = start(generation="v1", api_url="https://ssapi.shipstation.com")
    assert post(v1, note()).status_code == 400  # V1 knows no V2 events (and needs no header)
    assert post(v1, v1_note).status_code == 200


@pytest.mark.parametrize(
    ("url", "kind", "allowed"),
    [
        (LABELS, "LABEL_CREATED_V2", True),
        (f"{API}/v2/labels/se-1", "LABEL_CREATED_V2", True),
        (FULFILLMENTS, "FULFILLMENT_SHIPPED_V2", True),
        (LABELS, "FULFILLMENT_SHIPPED_V2", False),  # the path must be the list the event names
        (f"{API}/v2/shipments?batch_id=se-1", "LABEL_CREATED_V2", False),
        (f"{API}/v2/environment/webhooks", "LABEL_CREATED_V2", False),
        (f"{API}/labels?batch_id=se-1", "LABEL_CREATED_V2", False),
        ("https://api2.shipstation.com/v2/labels", "LABEL_CREATED_V2", False),  # no shards on V2
        ("https://ssapi.shipstation.com/v2/labels", "LABEL_CREATED_V2", False),
        ("http://api.shipstation.com/v2/labels", "LABEL_CREATED_V2", False),
        ("https://api.shipstation.com@evil.example/v2/labels", "LABEL_CREATED_V2", False),
        ("https://api.shipstation.com/v2/labels/../../x", "LABEL_CREATED_V2", False),
    ],
)
def test_v2_resource_urls(url: str, kind: str, allowed: bool) -> None:
    assert (resource_url_problem(url, API, "v2", kind) is None) is allowed
    # A base URL given with its /v2 is the same API.
    assert (resource_url_problem(url, f"{API}/v2", "v2", kind) is None) is allowed


# -- signatures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_of(key: rsa.RSAPrivateKey) -> str:
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode()


def jwks_of(key: rsa.RSAPrivateKey, kid: str) -> str:
    numbers = key.public_key().public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return json.dumps({"keys": [{"kty": "RSA", "kid": kid, "n": b64(numbers.n), "e": b64(numbers.e)}]})


def signed(
    key: rsa.RSAPrivateKey, body: bytes, *, kid: str = "key-1", at: datetime | None = None
) -> dict[str, str]:
    stamp = (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    signature = key.sign(stamp.encode() + b"." + body, padding.PKCS1v15(), hashes.SHA256())
    return {
        "x-shipengine-rsa-sha256-key-id": kid,
        "x-shipengine-rsa-sha256-signature": base64.b64encode(signature).decode(),
        "x-shipengine-timestamp": stamp,
    }


def test_signatures_are_verified_when_a_key_is_configured(
    start: Callable[..., str], private_key: rsa.RSAPrivateKey
) -> None:
    endpoint = start(verifier=SignatureVerifier.from_setting(pem_of(private_key)))
    body = json.dumps(note()).encode()
    headers = {SECRET_HEADER: TOKEN, "content-type": "application/json", **signed(private_key, body)}
    assert httpx.post(endpoint, content=body, headers=headers).json() == {"status": "queued"}
    tampered = json.dumps(note(FULFILLMENTS, "FULFILLMENT_SHIPPED_V2")).encode()
    refused = httpx.post(endpoint, content=tampered, headers=headers)
    assert refused.status_code == 401 and "does not match" in refused.json()["error"]
    unsigned = httpx.post(endpoint, content=body, headers={SECRET_HEADER: TOKEN})
    assert unsigned.status_code == 401 and "not signed" in unsigned.json()["error"]
    stale = {SECRET_HEADER: TOKEN, **signed(private_key, body, at=datetime.now(UTC) - timedelta(minutes=6))}
    assert httpx.post(endpoint, content=body, headers=stale).status_code == 400


def test_a_jwks_file_names_its_keys(private_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(jwks_of(private_key, "key-7"))
    verifier = SignatureVerifier.from_setting(str(path))
    body = b'{"resource_url": "x"}'
    verifier.verify(signed(private_key, body, kid="key-7"), body)
    with pytest.raises(SignatureError, match="unknown key id"):
        verifier.verify(signed(private_key, body, kid="key-8"), body)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(SignatureError, match="does not match"):
        verifier.verify(signed(other, body, kid="key-7"), body)


def test_the_public_key_setting(private_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    pem = tmp_path / "shipstation.pem"
    pem.write_text(pem_of(private_key))
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    base = {"_env_file": None, "shipstation_api_version": "v2", "shipnav_webhook_token": TOKEN}
    assert app_from_settings(Settings(**base, shipnav_webhook_public_key=str(pem)), ledger)  # type: ignore[arg-type]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(SettingsError, match="SHIPNAV_WEBHOOK_PUBLIC_KEY"):
        app_from_settings(Settings(**base, shipnav_webhook_public_key=str(garbage)), ledger)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="SHIPNAV_WEBHOOK_PUBLIC_KEY: expected the path"):
        from shipnav_dagster.settings import read_environment

        read_environment(_env_file=None, shipnav_webhook_public_key=str(tmp_path / "missing.pem"))


# -- subscribe ---------------------------------------------------------------------------------------


def v2_settings(sandbox: SandboxServers, world: SandboxWorld, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "shipstation_api_version": "v2",
        "shipstation_api_url": sandbox.shipstation_v2_url,
        "shipstation_api_key": world.shipstation.v2.api_key,
        "shipnav_webhook_token": TOKEN,
    }
    return Settings(_env_file=None, **(values | extra))  # type: ignore[call-arg]


TARGET = f"https://hooks.example.com/webhooks/shipstation/{TOKEN}"


def test_subscribe_registers_both_v2_events_with_the_header(
    sandbox: SandboxServers, empty_world: SandboxWorld
) -> None:
    result = subscribe(v2_settings(sandbox, empty_world), TARGET)
    assert [(s.event, s.created) for s in result.subscriptions] == [
        ("LABEL_CREATED_V2", True),
        ("FULFILLMENT_SHIPPED_V2", True),
    ]
    hooks = empty_world.shipstation.v2.webhooks.values()
    assert all(h["url"] == TARGET and h["headers"] == [{"key": SECRET_HEADER, "value": TOKEN}] for h in hooks)
    # With a header secret of its own, a second run brings the header up to date, nothing else.
    again = subscribe(
        v2_settings(sandbox, empty_world, shipnav_webhook_header_secret="new-header-secret"), TARGET
    )
    assert [(s.created, s.updated) for s in again.subscriptions] == [(False, True), (False, True)]
    assert len(empty_world.shipstation.v2.webhooks) == 2
    assert all(h["headers"][0]["value"] == "new-header-secret" for h in hooks)


def test_subscribe_leaves_another_webhook_of_the_event_alone(
    sandbox: SandboxServers, empty_world: SandboxWorld
) -> None:
    other = "https://someone-else.example/hook"
    with httpx.Client(
        base_url=sandbox.shipstation_v2_url, headers={"API-Key": empty_world.shipstation.v2.api_key}
    ) as c:
        assert (
            c.post("/v2/environment/webhooks", json={"url": other, "event": "LABEL_CREATED_V2"}).status_code
            == 200
        )
    out, err = io.StringIO(), io.StringIO()
    code = run_subscribe(v2_settings(sandbox, empty_world), TARGET, stdout=out, stderr=err)
    assert code == 1
    assert "FULFILLMENT_SHIPPED_V2: subscribed" in out.getvalue()
    assert "LABEL_CREATED_V2: ShipStation already has webhook se-" in err.getvalue()
    urls = sorted(h["url"] for h in empty_world.shipstation.v2.webhooks.values())
    assert urls == sorted([other, TARGET])
    assert TOKEN not in out.getvalue() + err.getvalue()


def test_subscribe_on_v2_needs_a_secret_for_the_header(
    sandbox: SandboxServers, empty_world: SandboxWorld
) -> None:
    err = io.StringIO()
    settings = v2_settings(sandbox, empty_world, shipnav_webhook_token=None)
    assert run_subscribe(settings, TARGET, stderr=err) == 2
    assert "SHIPNAV_WEBHOOK_TOKEN" in err.getvalue() and not empty_world.shipstation.v2.webhooks
