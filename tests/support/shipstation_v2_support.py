"""Shared by the ShipStation V2 sandbox tests: an httpx client, a small fixed shop, schema checks."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from shipnav_dagster.sandbox import scenario as sc
from shipnav_dagster.sandbox.server import SandboxServers
from shipnav_dagster.sandbox.state import SandboxWorld
from tests.support.shipstation_v2_schemas import component

Record = dict[str, Any]


def v2_client(sandbox: SandboxServers, world: SandboxWorld, **kwargs: Any) -> httpx.Client:
    headers = {"API-Key": world.shipstation.v2.api_key}
    return httpx.Client(base_url=sandbox.shipstation_v2_url, headers=headers, timeout=10, **kwargs)


def v1_client(sandbox: SandboxServers, world: SandboxWorld) -> httpx.Client:
    auth = (world.shipstation.api_key, world.shipstation.api_secret)
    return httpx.Client(base_url=sandbox.shipstation_url, auth=auth, timeout=10)


def pacific(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 9) -> datetime:
    """A naive Pacific wall-clock time in 2024 (September: PDT, UTC-7)."""
    return datetime(2024, month, day, hour, minute, second)


def validate(body: object, name: str, *, required: tuple[str, ...] = ()) -> None:
    """``body`` conforms to the schema written from the spec component ``name``."""
    Draft202012Validator(component(name, required=required)).validate(body)


@dataclass
class Shop:
    """A small shop with one of each case, built with the scenario helpers at fixed times."""

    orders: dict[str, Record] = field(default_factory=dict)  # by order number
    labels: dict[str, Record] = field(default_factory=dict)  # by a short name
    fulfillments: dict[str, Record] = field(default_factory=dict)
    stores: dict[str, int] = field(default_factory=dict)


def build_shop(world: SandboxWorld) -> Shop:
    shop = Shop()
    shop.stores["web"] = sc.add_store(world, store_name="Web", created=pacific(1, 8))["storeId"]
    shop.stores["market"] = sc.add_store(world, store_name="Market", marketplace_id=2, created=pacific(1, 8))[
        "storeId"
    ]

    def order(number: str, hour: int, store: str = "web", **kwargs: Any) -> Record:
        made = sc.add_ss_order(
            world,
            order_number=number,
            customer_name=f"Customer {number}",
            order_date=pacific(17, hour - 1),
            created=pacific(17, hour - 1, 30),
            store_id=shop.stores[store],
            items=(("MUG-11OZ-BLK", 1), ("TEE-CRW-M-NVY", 2)),
            **kwargs,
        )
        shop.orders[number] = made
        return made

    one = order("1001", 10)
    shop.labels["single"] = sc.buy_label(world, one["orderId"], carrier_code="ups", created=pacific(17, 10))
    two = order("1002", 11)
    shop.labels["voided"] = sc.buy_label(world, two["orderId"], carrier_code="fedex", created=pacific(17, 11))
    sc.void_label(world, shop.labels["voided"]["shipmentId"], pacific(17, 12))
    shop.labels["relabel"] = sc.buy_label(
        world, two["orderId"], carrier_code="usps", created=pacific(17, 12, 30)
    )
    three = order("1003", 13)
    shop.fulfillments["marked"] = sc.mark_shipped(
        world,
        three["orderId"],
        carrier="FedEx",
        tracking_number="794600000001",
        ship_date=date(2024, 9, 16),
        created=pacific(17, 13),
    )
    order("1004", 14)  # awaiting shipment, no label
    five = order("1005", 15, store="market")
    six = order("1006", 15, store="market")
    shop.labels["batch_a"] = sc.buy_label(
        world, five["orderId"], carrier_code="ups", created=pacific(17, 15, 10), batch_number="555"
    )
    shop.labels["batch_b"] = sc.buy_label(
        world, six["orderId"], carrier_code="ups", created=pacific(17, 15, 11), batch_number="555"
    )
    seven = order("1007", 16)
    child = sc.split_order(world, seven["orderId"], [("TEE-CRW-M-NVY", 1)], when=pacific(17, 16, 5))
    shop.orders[child["orderNumber"]] = child
    shop.labels["split_parent"] = sc.buy_label(world, seven["orderId"], created=pacific(17, 16, 10))
    shop.labels["split_child"] = sc.buy_label(world, child["orderId"], created=pacific(17, 16, 20))
    return shop


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class Receiver:
    """A loopback HTTP endpoint that records every POST (a webhook consumer stand-in)."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[Received] = []
        self.status = status
        received, answer = self.requests, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                received.append(Received(self.path, headers, json.loads(raw or b"null")))
                self.send_response(answer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/shipstation"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@contextmanager
def receiving(status: int = 200) -> Iterator[Receiver]:
    receiver = Receiver(status)
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
