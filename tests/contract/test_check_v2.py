"""``shipnav check`` for ShipStation API V2 over real HTTP against the sandbox: the key, the
endpoints a sync reads, the budget, and keys of the other generation."""

from pathlib import Path

import pytest

from shipnav_dagster.cli import main
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from shipnav_dagster.settings import Settings


def configure(
    monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServers, tmp_path: Path, version: str = "v2"
) -> dict[str, str]:
    for name in [*(n.upper() for n in Settings.model_fields), "DAGSTER_HOME"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    env = {
        **sandbox.env(shipstation_api_version=version),
        "SHIPNAV_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def check(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["check"])
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    return code, [
        line for line in lines if line.split(" ")[0] in ("OK", "WARN", "FAIL") and "ShipStation:" in line
    ]


def test_green_on_v2(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = configure(monkeypatch, sandbox, tmp_path)
    code, lines = check(capsys)
    assert code == 0, lines
    text = "\n".join(lines)
    labels = len(seeded_world.shipstation.shipments)
    url = sandbox.shipstation_v2_url
    assert f"API key accepted by {url} (ShipStation API V2, GET /v2/labels: {labels} labels" in text
    for path in ("/v2/labels", "/v2/shipments", "/v2/fulfillments", "/v2/environment/webhooks"):
        assert f"GET {path} readable" in text
    assert "rate limit: 200 requests per minute assumed" in text and "none refused" in text
    assert not [line for line in lines if not line.startswith("OK")]
    assert env["SHIPSTATION_API_KEY"] not in text
    assert seeded_world.shipstation.log.entries == []  # V1 never asked


def test_a_wrong_v2_key(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, sandbox, tmp_path)
    monkeypatch.setenv("SHIPSTATION_API_KEY", "wrong-v2-key")
    code, lines = check(capsys)
    assert code == 1
    [line] = [line for line in lines if line.startswith("FAIL")]
    assert line.startswith(
        "FAIL ShipStation: ShipStation rejected SHIPSTATION_API_KEY as a V2 API key (401, GET /v2/labels)"
    )
    assert "wrong-v2-key" not in line


def test_a_v1_key_pair_used_against_v2(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, sandbox, tmp_path)
    monkeypatch.setenv("SHIPSTATION_API_KEY", seeded_world.shipstation.api_key)
    monkeypatch.setenv("SHIPSTATION_API_SECRET", seeded_world.shipstation.api_secret)
    _code, lines = check(capsys)
    [line] = [line for line in lines if line.startswith("FAIL")]
    assert "SHIPSTATION_API_SECRET is set, so this may be a V1 key + secret pair" in line
    assert "set SHIPSTATION_API_VERSION=v1" in line
    assert seeded_world.shipstation.api_secret not in line


def test_a_v2_key_used_against_v1(
    sandbox: SandboxServers,
    seeded_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, sandbox, tmp_path, version="v1")
    monkeypatch.setenv("SHIPSTATION_API_KEY", seeded_world.shipstation.v2.api_key)
    _code, lines = check(capsys)
    [line] = [line for line in lines if line.startswith("FAIL")]
    assert "ShipStation rejected SHIPSTATION_API_KEY / SHIPSTATION_API_SECRET (401" in line
    assert "a V2 API key does not work with V1: for one, set SHIPSTATION_API_VERSION=v2" in line


@pytest.mark.parametrize(
    ("version", "url", "words"),
    [
        (
            "v2",
            "https://ssapi.shipstation.com",
            "is the ShipStation API V1 host while SHIPSTATION_API_VERSION is v2",
        ),
        (
            "v1",
            "https://api.shipstation.com",
            "is the ShipStation API V2 host while SHIPSTATION_API_VERSION is v1",
        ),
    ],
)
def test_the_url_of_the_other_generation_is_named_before_any_request(
    sandbox: SandboxServers,
    empty_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    version: str,
    url: str,
    words: str,
) -> None:
    configure(monkeypatch, sandbox, tmp_path, version=version)
    monkeypatch.setenv("SHIPSTATION_API_URL", url)
    _code, lines = check(capsys)
    [line] = [line for line in lines if line.startswith("FAIL")]
    assert words in line


def test_a_busy_key_is_a_warning(
    sandbox: SandboxServers,
    empty_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, sandbox, tmp_path)
    empty_world.shipstation.v2.faults.throttle_next = 1
    empty_world.shipstation.v2.faults.retry_after_seconds = 0
    code, lines = check(capsys)
    assert code == 0
    [line] = [line for line in lines if line.startswith("WARN")]
    assert "ShipStation answered 429 1 time(s)" in line and "another client uses this API key" in line


def test_the_v2_404_names_the_root(
    sandbox: SandboxServers,
    empty_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, sandbox, tmp_path)
    monkeypatch.setenv("SHIPSTATION_API_URL", f"{sandbox.shipstation_v2_url}/api")
    _code, lines = check(capsys)
    [line] = [line for line in lines if line.startswith("FAIL")]
    assert "/api answered 404 for GET /v2/labels" in line and "the V2 API root without /v2" in line
