"""The failure notice reaches the operator's webhook URL, and a dead URL is reported, not raised."""

import json
import socket

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipnav_dagster.sandbox.server import ThreadedServer
from shipnav_dagster.sync.alerts import announce_failure


def test_notice_is_posted_as_json() -> None:
    received: list[dict[str, str]] = []

    async def hook(request: Request) -> Response:
        received.append(json.loads(await request.body()))
        return Response(status_code=204)

    with ThreadedServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        delivered = announce_failure(f"{base}/hook", job="shipnav_sync_job", run_id="r1", first_line="boom")
        assert delivered is None
        assert announce_failure(f"{base}/nowhere", job="j", run_id="r2", first_line="x") == "HTTP 404"
    assert received == [
        {"text": "shipnav: shipnav_sync_job run r1 failed: boom", "job": "shipnav_sync_job", "run_id": "r1"}
    ]


def test_unreachable_url_is_reported_without_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    problem = announce_failure(f"http://127.0.0.1:{port}/t0ken", job="j", run_id="r", first_line="x")
    assert problem == "ConnectError"
