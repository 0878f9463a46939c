"""ShipStation labels (V1 shipments), voids and mark-as-shipped fulfillments of the sandbox shop."""

from collections.abc import Sequence
from datetime import date, datetime

from shipnav_dagster.sandbox.scenario.orders import _order
from shipnav_dagster.sandbox.scenario.values import (
    _NO_INSURANCE,
    ACCOUNT_USER_ID,
    DEFAULT_SERVICE,
    WAREHOUSE_ID,
    ItemSpec,
    Record,
    _bump_modify,
    _date_text,
    _dimensions,
    _money,
    _now,
    _shipment_options,
    _ts,
    _weight,
    tracking_number_for,
)
from shipnav_dagster.sandbox.shipstation.v2 import events as v2_events
from shipnav_dagster.sandbox.state import (
    SandboxWorld,
)


def _shipment_items(order: Record, items: Sequence[ItemSpec] | None) -> list[Record]:
    """Order items (or the named (sku, qty) subset) in the OrderItem shape shipments carry."""
    goods = [i for i in order["items"] if not i["adjustment"]]
    if items is None:
        return goods  # the item objects themselves: shared, never mutated
    out = []
    for sku, qty in items:
        source = next((i for i in goods if i["sku"] == sku), None)
        if source is None:
            raise ValueError(f"order {order['orderNumber']} has no item {sku}")
        out.append(dict(source, quantity=qty))
    return out


def buy_label(
    world: SandboxWorld,
    order_id: int,
    *,
    carrier_code: str = "ups",
    service_code: str | None = None,
    tracking_number: str | None = None,
    created: datetime | None = None,
    ship_date: date | None = None,
    items: Sequence[ItemSpec] | None = None,
    is_return: bool = False,
    package_code: str = "package",
    shipment_cost: float | None = None,
    batch_number: str | None = None,
    dimensions: tuple[float, float, float] | None = (12.0, 9.0, 4.0),
) -> Record:
    """A purchased label for an order (``GET /shipments`` item shape, shipmentItems included).

    An outbound label moves the order to ``shipped`` with the label's carrier, service and ship
    date; a return label (``isReturnLabel: true``) leaves the order alone. ``service_code``
    defaults to the carrier's usual service, ``tracking_number`` to a realistic generated one,
    ``ship_date`` to the label's creation date. Returns the shipment record.
    """
    at = _now(created)
    with world.lock:
        order = _order(world, order_id)
        service = service_code or DEFAULT_SERVICE.get(carrier_code, f"{carrier_code}_ground")
        shipment_id = world.shipstation.next_id()
        tracking = tracking_number or tracking_number_for(carrier_code, shipment_id, service)
        ship_items = _shipment_items(order, items)
        weight = sum(i["quantity"] * (i["weight"] or {}).get("value", 0) for i in ship_items)
        shipped_on = _date_text(ship_date or at)
        shipment = {
            "shipmentId": shipment_id,
            "orderId": order_id,
            "orderKey": order["orderKey"],
            "userId": ACCOUNT_USER_ID,
            "customerEmail": order["customerEmail"],
            "orderNumber": order["orderNumber"],
            "createDate": _ts(at),
            "shipDate": shipped_on,
            "shipmentCost": shipment_cost if shipment_cost is not None else _money(6.5 + weight * 0.11),
            "insuranceCost": 0.0,
            "trackingNumber": tracking,
            "isReturnLabel": is_return,
            "batchNumber": batch_number,
            "carrierCode": carrier_code,
            "serviceCode": service,
            "packageCode": package_code,
            "confirmation": "none",
            "warehouseId": WAREHOUSE_ID,
            "voided": False,
            "voidDate": None,
            "marketplaceNotified": False,
            "notifyErrorMessage": None,
            "shipTo": order["shipTo"],  # shared, never mutated (see _weight)
            "weight": _weight(round(weight, 1)),
            "dimensions": None if dimensions is None else _dimensions(*dimensions),
            "insuranceOptions": _NO_INSURANCE,
            "advancedOptions": _shipment_options(order["advancedOptions"]["storeId"]),
            "shipmentItems": ship_items,
            "labelData": None,
            "formData": None,
        }
        world.shipstation.shipments[shipment_id] = shipment
        v2_events.label_created(world, shipment)
        if not is_return:
            order.update(
                orderStatus="shipped", shipDate=shipped_on, carrierCode=carrier_code, serviceCode=service
            )
            order["packageCode"] = package_code
            _bump_modify(order, at)
        return shipment


def void_label(world: SandboxWorld, shipment_id: int, when: datetime | None = None) -> Record:
    """Void a label: same record, ``voided: true`` and ``voidDate`` (``createDate`` unchanged).

    When no live outbound label or fulfillment is left, the order goes back to
    ``awaiting_shipment`` as in ShipStation. Returns the shipment.
    """
    at = _now(when)
    with world.lock:
        shipment = world.shipstation.shipments[shipment_id]
        if shipment["voided"]:
            raise ValueError(f"shipment {shipment_id} is already voided")
        if _ts(at) < shipment["createDate"]:
            raise ValueError(f"void time {at} is before the label was created ({shipment['createDate']})")
        shipment["voided"] = True
        shipment["voidDate"] = _ts(at)
        order = world.shipstation.orders.get(shipment["orderId"])
        if order is not None and not shipment["isReturnLabel"]:
            if not _order_still_shipped(world, order["orderId"]):
                order.update(
                    orderStatus="awaiting_shipment", shipDate=None, carrierCode=None, serviceCode=None
                )
            _bump_modify(order, at)
        return shipment


def _order_still_shipped(world: SandboxWorld, order_id: int) -> bool:
    live_label = any(
        s["orderId"] == order_id and not s["voided"] and not s["isReturnLabel"]
        for s in world.shipstation.shipments.values()
    )
    fulfilled = any(
        f["orderId"] == order_id and not f["voided"] for f in world.shipstation.fulfillments.values()
    )
    return live_label or fulfilled


def mark_shipped(
    world: SandboxWorld,
    order_id: int,
    *,
    carrier: str = "FedEx",
    tracking_number: str,
    ship_date: date | None = None,
    created: datetime | None = None,
) -> Record:
    """Mark an order shipped outside ShipStation: a ``GET /fulfillments`` record, no shipment.

    ``carrier`` is free text as the seller typed it (``FedEx``, ``Royal Mail``); the fulfillment's
    ``shipDate`` is a midnight datetime, unlike a shipment's bare date. Queues a
    FULFILLMENT_SHIPPED_V2 notification for each V2 subscription to it. Returns the fulfillment.
    """
    at = _now(created)
    with world.lock:
        order = _order(world, order_id)
        fulfillment_id = world.shipstation.next_id()
        shipped_on = ship_date or at.date()
        fulfillment = {
            "fulfillmentId": fulfillment_id,
            "orderId": order_id,
            "orderNumber": order["orderNumber"],
            "userId": ACCOUNT_USER_ID,
            "customerEmail": order["customerEmail"],
            "trackingNumber": tracking_number,
            "createDate": _ts(at),
            "shipDate": _ts(datetime.combine(shipped_on, datetime.min.time())),
            "voidDate": None,
            "deliveryDate": None,
            "carrierCode": carrier,
            "sellerFillProviderId": None,
            "sellerFillProviderName": None,
            "fulfillmentProviderCode": None,
            "fulfillmentServiceCode": None,
            "fulfillmentFee": 0.0,
            "voidRequested": False,
            "voided": False,
            "marketplaceNotified": False,
            "notifyErrorMessage": None,
            "shipTo": order["shipTo"],
        }
        world.shipstation.fulfillments[fulfillment_id] = fulfillment
        order.update(orderStatus="shipped", shipDate=_date_text(shipped_on))
        _bump_modify(order, at)
        v2_events.fulfillment_shipped(world, fulfillment)
        return fulfillment
