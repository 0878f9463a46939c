"""ShipStation orders of the sandbox shop: placed, touched, put on hold, split; and looked up."""

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from shipnav_dagster.sandbox.scenario.customers import _default_store, _email_for, make_address
from shipnav_dagster.sandbox.scenario.nav import add_nav_order
from shipnav_dagster.sandbox.scenario.values import (
    _NO_CUSTOMS,
    _NO_INSURANCE,
    WAREHOUSE_ID,
    ItemSpec,
    Record,
    _bump_modify,
    _digits,
    _item_ts,
    _money,
    _now,
    _product,
    _ts,
    _weight,
    guid_for,
)
from shipnav_dagster.sandbox.state import (
    SandboxWorld,
)


def _order_item(
    world: SandboxWorld,
    sku: str,
    quantity: int,
    when: datetime,
    *,
    line_item_key: str | None,
    unit_price: float | None = None,
    adjustment: bool = False,
    name: str | None = None,
) -> Record:
    product = _product(sku)
    return {
        "orderItemId": world.shipstation.next_id(),
        "lineItemKey": line_item_key,
        "sku": sku,
        "name": name or product.name,
        "imageUrl": None,
        "weight": None if adjustment else _weight(product.weight_oz),
        "quantity": quantity,
        "unitPrice": product.unit_price if unit_price is None else unit_price,
        "taxAmount": None,
        "shippingAmount": None,
        "warehouseLocation": None,
        "options": [],
        "productId": None if adjustment else product.product_id,
        "fulfillmentSku": None,
        "adjustment": adjustment,
        "upc": None,
        "createDate": _item_ts(when),
        "modifyDate": _item_ts(when),
    }


def _order_totals(items: Sequence[Record]) -> tuple[float, float]:
    """(goods total incl. adjustments, weight in ounces of shippable items)."""
    total = sum(i["quantity"] * i["unitPrice"] for i in items)
    weight = sum(i["quantity"] * i["weight"]["value"] for i in items if i["weight"])
    return _money(total), round(weight, 1)


def _next_order_number(world: SandboxWorld) -> str:
    taken = {o["orderNumber"] for o in world.shipstation.orders.values()}
    number = 100_001 + len(world.shipstation.orders)
    while str(number) in taken:
        number += 1
    return str(number)


def add_ss_order(
    world: SandboxWorld,
    *,
    order_number: str | None = None,
    customer_name: str = "John Smith",
    company: str | None = None,
    order_date: datetime | None = None,
    created: datetime | None = None,
    items: Sequence[ItemSpec] = (("MUG-11OZ-BLK", 1),),
    adjustments: Sequence[tuple[str, float]] = (),
    store_id: int | None = None,
    order_status: str = "awaiting_shipment",
    order_key: str | None = None,
    ship_to: Record | None = None,
    bill_to: Record | None = None,
    line_item_keys: bool = False,
    custom_fields: Sequence[str | None] = (None, None, None),
    requested_shipping_service: str | None = None,
) -> Record:
    """A ShipStation order (``GET /orders`` item shape), without anything on the NAV side.

    ``created`` (the import into ShipStation) defaults to a few minutes after ``order_date``;
    ``adjustments`` are (name, amount) pseudo-lines with ``adjustment: true`` (discounts).
    ``ship_to``/``bill_to`` are used as given (so callers may share one address object).
    """
    placed = _now(order_date)
    imported = created if created is not None else placed + timedelta(minutes=3)
    with world.lock:
        state = world.shipstation
        sid = store_id if store_id is not None else _default_store(world)
        number = order_number if order_number is not None else _next_order_number(world)
        order_id = state.next_id()
        key = order_key if order_key is not None else guid_for(f"order:{sid}:{number}")
        ship = ship_to if ship_to is not None else make_address(customer_name, company=company, key=number)
        bill = bill_to if bill_to is not None else dict(ship)
        lines = [
            _order_item(
                world,
                sku,
                qty,
                placed,
                line_item_key=_digits(f"li:{key}:{n}", 11) if line_item_keys else None,
            )
            for n, (sku, qty) in enumerate(items)
        ]
        lines += [
            _order_item(
                world,
                "DISCOUNT CODE",
                1,
                placed,
                line_item_key=None,
                unit_price=-abs(amount),
                adjustment=True,
                name=name,
            )
            for name, amount in adjustments
        ]
        total, weight_oz = _order_totals(lines)
        email = _email_for(customer_name)
        shipping = 0.0 if total >= 75 else 7.95
        tax = _money(max(total, 0) * 0.0825)
        order = {
            "orderId": order_id,
            "orderNumber": number,
            "orderKey": key,
            "orderDate": _ts(placed),
            "createDate": _ts(imported),
            "modifyDate": _ts(imported),
            "paymentDate": None if order_status == "awaiting_payment" else _ts(placed),
            "shipByDate": None,
            "orderStatus": order_status,
            "customerId": int("7" + _digits(" ".join(customer_name.split()).lower(), 7)),
            "customerUsername": email,
            "customerEmail": email,
            "billTo": bill,
            "shipTo": ship,
            "items": lines,
            "orderTotal": _money(total + shipping + tax),
            "amountPaid": 0.0 if order_status == "awaiting_payment" else _money(total + shipping + tax),
            "taxAmount": tax,
            "shippingAmount": shipping,
            "customerNotes": None,
            "internalNotes": None,
            "gift": False,
            "giftMessage": None,
            "paymentMethod": "Credit Card",
            "requestedShippingService": requested_shipping_service,
            "carrierCode": None,
            "serviceCode": None,
            "packageCode": None,
            "confirmation": "none",
            "shipDate": None,
            "holdUntilDate": None,
            "weight": _weight(weight_oz),
            "dimensions": None,
            "insuranceOptions": _NO_INSURANCE,
            "internationalOptions": _NO_CUSTOMS,
            "advancedOptions": {
                "warehouseId": WAREHOUSE_ID,
                "nonMachinable": False,
                "saturdayDelivery": False,
                "containsAlcohol": False,
                "mergedOrSplit": False,
                "mergedIds": [],
                "parentId": None,
                "storeId": sid,
                "customField1": custom_fields[0],
                "customField2": custom_fields[1],
                "customField3": custom_fields[2],
                "source": None,
                "billToParty": None,
                "billToAccount": None,
                "billToPostalCode": None,
                "billToCountryCode": None,
                "billToMyOtherAccount": None,
            },
            "tagIds": None,
            "userId": None,
            "externallyFulfilled": False,
            "externallyFulfilledBy": None,
        }
        state.orders[order_id] = order
        return order


def add_customer_order(
    world: SandboxWorld,
    *,
    order_number: str | None = None,
    customer_name: str = "John Smith",
    company: str | None = None,
    order_date: datetime | None = None,
    created: datetime | None = None,
    items: Sequence[ItemSpec] = (("MUG-11OZ-BLK", 1),),
    adjustments: Sequence[tuple[str, float]] = (),
    store_id: int | None = None,
    order_status: str = "awaiting_shipment",
    order_key: str | None = None,
    ship_to: Record | None = None,
    bill_to: Record | None = None,
    line_item_keys: bool = False,
    in_nav: bool = True,
    nav_status: str = "Open",
    external_document_no: str | None = None,
    nav_no: str | None = None,
    nav_customer_name: str | None = None,
    nav_order_date: date | None = None,
) -> tuple[Record, Record | None]:
    """A ShipStation order and (``in_nav``) its NAV SalesOrder with one sales line per item.

    NAV defaults: ``External_Document_No`` = the ShipStation ``orderNumber`` (pass ``""`` for a
    blank one), ``No`` = the next ``SO-1xxxx`` number, ``Sell_to_Customer_Name`` = the ship-to
    name, ``Order_Date`` = the Pacific calendar date of ``orderDate``.
    Returns ``(shipstation_order, nav_sales_order_or_None)``.
    """
    with world.lock:
        order = add_ss_order(
            world,
            order_number=order_number,
            customer_name=customer_name,
            company=company,
            order_date=order_date,
            created=created,
            items=items,
            adjustments=adjustments,
            store_id=store_id,
            order_status=order_status,
            order_key=order_key,
            ship_to=ship_to,
            bill_to=bill_to,
            line_item_keys=line_item_keys,
        )
        if not in_nav:
            return order, None
        placed = datetime.fromisoformat(order["orderDate"][:26])
        nav = add_nav_order(
            world,
            nav_no,
            customer_name=nav_customer_name if nav_customer_name is not None else customer_name,
            order_date=nav_order_date or placed.date(),
            external_document_no=order["orderNumber"]
            if external_document_no is None
            else external_document_no,
            status=nav_status,
            lines=items,
            address=order["shipTo"],
        )
        return order, nav


def _order(world: SandboxWorld, order_id: int) -> Record:
    try:
        return world.shipstation.orders[order_id]
    except KeyError:
        raise KeyError(f"no ShipStation order {order_id}") from None


def touch_order(world: SandboxWorld, order_id: int, when: datetime | None = None) -> Record:
    """Bump ``modifyDate`` (an edit in ShipStation that changes nothing a poller cares about)."""
    with world.lock:
        order = _order(world, order_id)
        _bump_modify(order, _now(when))
        return order


def set_order_status(world: SandboxWorld, order_id: int, status: str, when: datetime | None = None) -> Record:
    with world.lock:
        order = _order(world, order_id)
        order["orderStatus"] = status
        _bump_modify(order, _now(when))
        return order


def split_order(
    world: SandboxWorld, order_id: int, items: Sequence[ItemSpec], *, when: datetime | None = None
) -> Record:
    """Split ``items`` (sku, quantity) off into a child order, as ShipStation's "Split Ship" does.

    The child is numbered ``<parent>-N``, carries ``advancedOptions.parentId`` = the parent's id
    and ``mergedOrSplit = true`` (the parent gets ``mergedOrSplit = true`` too); quantities move
    from the parent's items to new child items. Returns the child order.
    """
    at = _now(when)
    with world.lock:
        parent = _order(world, order_id)
        siblings = [
            o for o in world.shipstation.orders.values() if o["advancedOptions"]["parentId"] == order_id
        ]
        number = f"{parent['orderNumber']}-{len(siblings) + 1}"
        moved: list[Record] = []
        remaining = list(parent["items"])
        for sku, qty in items:
            index = next(
                (
                    n
                    for n, i in enumerate(remaining)
                    if i["sku"] == sku and not i["adjustment"] and i["quantity"] >= qty
                ),
                None,
            )
            if index is None:
                raise ValueError(f"order {parent['orderNumber']} has no {qty} x {sku} to split off")
            source = remaining[index]
            # Items may be shared with earlier labels' shipmentItems: replace, never mutate.
            remaining[index] = dict(source, quantity=source["quantity"] - qty, modifyDate=_item_ts(at))
            moved.append(
                dict(
                    source,
                    orderItemId=world.shipstation.next_id(),
                    quantity=qty,
                    createDate=_item_ts(at),
                    modifyDate=_item_ts(at),
                )
            )
        # The parent's totals stay as the channel sent them; only its items and weight change.
        parent["items"] = [i for i in remaining if i["quantity"] > 0]
        parent["weight"] = _weight(_order_totals(parent["items"])[1])
        parent["advancedOptions"]["mergedOrSplit"] = True
        _bump_modify(parent, at)

        child_total, child_weight = _order_totals(moved)
        child = dict(parent)
        child.update(
            orderId=world.shipstation.next_id(),
            orderNumber=number,
            orderKey=guid_for(f"split:{parent['orderKey']}:{number}"),
            createDate=_ts(at),
            modifyDate=_ts(at),
            items=moved,
            orderTotal=child_total,
            amountPaid=0.0,
            taxAmount=0.0,
            shippingAmount=0.0,
            billTo=dict(parent["billTo"]),
            shipTo=dict(parent["shipTo"]),
            weight=_weight(child_weight),
            advancedOptions=dict(
                parent["advancedOptions"], parentId=order_id, mergedOrSplit=True, mergedIds=[]
            ),
        )
        world.shipstation.orders[child["orderId"]] = child
        return child


def order_by_number(world: SandboxWorld, order_number: str) -> Record:
    """The ShipStation order with this orderNumber (tests look orders up by their human number)."""
    with world.lock:
        for order in world.shipstation.orders.values():
            if order["orderNumber"] == order_number:
                return order
    raise KeyError(f"no ShipStation order number {order_number}")


def labels_of(world: SandboxWorld, order_id: int) -> list[Record]:
    """All shipments of an order, oldest first."""
    with world.lock:
        found = [s for s in world.shipstation.shipments.values() if s["orderId"] == order_id]
    return sorted(found, key=lambda s: (s["createDate"], s["shipmentId"]))
