"""``shipnav sandbox``: argument parsing, the printed environment, and the real process end to end."""

import io
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from shipnav_dagster.cli import main, parse
from shipnav_dagster.cli.common import env_quote, format_env

TRICKY = {
    "PLAIN": "sandbox-api-key",
    "NAV_ODATA_URL": "http://127.0.0.1:1/DynamicsNAV110/ODataV4/Company('CRONUS%20USA%2C%20Inc.')",
    "SPACES": "a b  c",
    "EMPTY": "",
    "SHELLY": 'it\'s $HOME `date` \\ "q" ; rm -rf /',
}


# --------------------------------------------------------------------------------------------
# Parsing and formatting
# --------------------------------------------------------------------------------------------


def test_sandbox_defaults() -> None:
    _, args = parse(["sandbox"])
    assert (args["host"], args["shipstation_port"], args["nav_port"]) == ("127.0.0.1", 0, 0)
    assert (args["seed"], args["orders"], args["latency_ms"], args["nav_auth"]) == (7, 300, 0.0, "oauth2")
    assert (args["tracking_max_length"], args["rate_limit"], args["platform"]) == (None, 40, "nav2018")
    assert (args["generation"], args["shipstation_v2_port"], args["v2_rate_limit"]) == ("v1", 0, 200)


def test_sandbox_options() -> None:
    _, args = parse(
        shlex.split(
            "sandbox --host 0.0.0.0 --shipstation-port 8801 --nav-port 8802 --seed 3 --orders 50 "
            "--latency-ms 25 --nav-auth basic --tracking-max-length 50 --rate-limit 0"
        )
    )
    assert (args["host"], args["shipstation_port"], args["nav_port"], args["seed"], args["orders"]) == (
        "0.0.0.0",
        8801,
        8802,
        3,
        50,
    )
    assert (args["latency_ms"], args["nav_auth"], args["tracking_max_length"], args["rate_limit"]) == (
        25.0,
        "basic",
        50,
        0,
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["sandbox", "--nav-port", "70000"],
        ["sandbox", "--orders", "-1"],
        ["sandbox", "--nav-auth", "kerberos"],
        ["sandbox", "--platform", "bc2"],
        ["sandbox", "--tracking-max-length", "0"],
        ["sandbox", "--latency-ms", "-5"],
        ["sandbox", "--shipstation", "v3"],
    ],
)
def test_bad_arguments_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "Usage: shipnav" in capsys.readouterr().err


def test_env_lines_round_trip_through_the_shell() -> None:
    text = format_env(TRICKY)
    assert len(text.splitlines()) == len(TRICKY)
    script = text + "\n" + "".join(f'printf "%s\\0" "${name}"\n' for name in TRICKY)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split("\0")[:-1] == list(TRICKY.values())


def test_env_lines_work_as_a_dotenv_file() -> None:
    dotenv = pytest.importorskip("dotenv")
    safe = {k: v for k, v in TRICKY.items() if k != "SHELLY"}  # dotenv expands $VAR by design
    assert dict(dotenv.dotenv_values(stream=io.StringIO(format_env(safe)))) == safe


def test_env_quote_only_where_needed() -> None:
    assert env_quote("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert env_quote("a b") == "'a b'"
    assert env_quote("Company('X')") == "\"Company('X')\""


# --------------------------------------------------------------------------------------------
# The real process
# --------------------------------------------------------------------------------------------


def _command() -> list[str]:
    script = Path(sys.executable).with_name("shipnav")
    if script.exists():
        return [str(script)]  # the installed console script, as an operator runs it
    return [sys.executable, "-m", "shipnav_dagster.cli"]


def _start(*extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPSTATION_", "NAV_", "SHIPNAV_"))}
    return subprocess.Popen(
        [*_command(), "sandbox", "--orders", "40", "--shipstation-port", "0", "--nav-port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _read_env(proc: subprocess.Popen[str], required: set[str], timeout: float = 60) -> dict[str, str]:
    """Read NAME=value lines until every required name has arrived (the process keeps running)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    env: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while not required <= env.keys():
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"shipnav sandbox printed only {sorted(env)} within {timeout}s")
        if line is None:
            err = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"shipnav sandbox exited early ({proc.poll()}): {err}")
        name, sep, raw = line.rstrip("\n").partition("=")
        assert sep and name.isidentifier() and name.isupper(), f"not a NAME=value line: {line!r}"
        (value,) = shlex.split(raw) or [""]
        env[name] = value
    return env


def _stop(proc: subprocess.Popen[str], sig: int) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sandbox_process_with_oauth2() -> None:
    proc = _start()
    try:
        env = _read_env(
            proc,
            {
                "SHIPSTATION_API_URL",
                "SHIPSTATION_API_KEY",
                "SHIPSTATION_API_SECRET",
                "NAV_ODATA_URL",
                "NAV_AUTH",
                "NAV_TOKEN_URL",
                "NAV_CLIENT_ID",
                "NAV_CLIENT_SECRET",
                "NAV_SCOPE",
            },
        )
        assert env["NAV_AUTH"] == "oauth2" and env["NAV_ODATA_URL"].endswith(
            "Company('CRONUS%20USA%2C%20Inc.')"
        )
        with httpx.Client(timeout=10) as http:
            stores = http.get(
                f"{env['SHIPSTATION_API_URL']}/stores",
                auth=(env["SHIPSTATION_API_KEY"], env["SHIPSTATION_API_SECRET"]),
            )
            assert stores.status_code == 200, stores.text
            assert {s["marketplaceName"] for s in stores.json()} >= {"ShipStation", "Shopify"}

            token = http.post(
                env["NAV_TOKEN_URL"],
                data={
                    "grant_type": "client_credentials",
                    "client_id": env["NAV_CLIENT_ID"],
                    "client_secret": env["NAV_CLIENT_SECRET"],
                    "scope": env["NAV_SCOPE"],
                },
            )
            assert token.status_code == 200, token.text
            orders = http.get(
                f"{env['NAV_ODATA_URL']}/SalesOrder",
                params={"$top": "1"},
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            )
            assert orders.status_code == 200, orders.text
            assert len(orders.json()["value"]) == 1
    finally:
        code = _stop(proc, signal.SIGTERM)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def test_sandbox_process_with_basic_auth_stops_on_ctrl_c() -> None:
    proc = _start("--nav-auth", "basic", "--tracking-max-length", "50")
    try:
        env = _read_env(
            proc,
            {"SHIPSTATION_API_URL", "NAV_ODATA_URL", "NAV_AUTH", "NAV_USERNAME", "NAV_PASSWORD"},
        )
        assert env["NAV_AUTH"] == "basic" and env["NAV_TRACKING_MAX_LENGTH"] == "50"
        assert "NAV_CLIENT_SECRET" not in env
        response = httpx.get(
            f"{env['NAV_ODATA_URL']}/SalesOrder",
            params={"$top": "1", "$select": "No,External_Document_No"},
            auth=(env["NAV_USERNAME"], env["NAV_PASSWORD"]),
            timeout=10,
        )
        assert response.status_code == 200, response.text
    finally:
        code = _stop(proc, signal.SIGINT)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def test_sandbox_reports_a_busy_port_and_exits_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*_command(), "sandbox", "--orders", "5", "--nav-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stdout == ""  # nothing a script could mistake for an environment
    assert "shipnav sandbox:" in result.stderr


def test_sandbox_process_on_shipstation_v2() -> None:
    """``--shipstation v2``: the environment of V2 (a key, no secret, the V2 host) works."""
    proc = _start("--shipstation", "v2", "--nav-auth", "basic")
    try:
        env = _read_env(
            proc, {"SHIPSTATION_API_VERSION", "SHIPSTATION_API_URL", "SHIPSTATION_API_KEY", "NAV_AUTH"}
        )
        assert env["SHIPSTATION_API_VERSION"] == "v2" and "SHIPSTATION_API_SECRET" not in env
        labels = httpx.get(
            f"{env['SHIPSTATION_API_URL']}/v2/labels",
            params={"page_size": "1"},
            headers={"API-Key": env["SHIPSTATION_API_KEY"]},
            timeout=10,
        )
        assert labels.status_code == 200 and labels.json()["total"] > 0, labels.text
    finally:
        code = _stop(proc, signal.SIGTERM)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def test_both_generations_print_v1_then_v2_as_comments() -> None:
    from shipnav_dagster.cli.sandbox import environment
    from shipnav_dagster.sandbox.server import running_sandbox
    from shipnav_dagster.sandbox.state import SandboxWorld

    with running_sandbox(SandboxWorld()) as servers:
        text = environment(servers, "both", "basic")
    active = [line for line in text.splitlines() if not line.startswith("#")]
    comments = [line[2:] for line in text.splitlines() if line.startswith("# SHIPSTATION_")]
    assert f"SHIPSTATION_API_URL={servers.shipstation_url}" in active
    assert "SHIPSTATION_API_VERSION=v2" in comments
    assert f"SHIPSTATION_API_URL={servers.shipstation_v2_url}" in comments
    script = text + '\nprintf "%s" "$SHIPSTATION_API_URL"'
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out == servers.shipstation_url  # the comments change nothing when sourced
