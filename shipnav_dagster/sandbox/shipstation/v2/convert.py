"""V1 records, as the world stores them, turned into the JSON the ShipStation API v2 returns.

Terminology flips between the generations (https://docs.shipstation.com/orders/understanding-
orders-shipments): a V1 *order* is a V2 *shipment*, a V1 *shipment* (one purchased label) is a
V2 *label*; ``orderKey`` becomes ``external_shipment_id`` and ``orderNumber`` becomes
``shipment_number``. That number is not unique in V2 (the spec says so): the shipments split off
an order keep the order's number, where V1 shows the split child as ``<number>-N``.

Times are converted by ``times`` (naive Pacific in, UTC with ``Z`` out).

Only properties the V2 spec defines are emitted (its schemas forbid additional properties), in
the order captured responses list them.
"""

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shipnav_dagster.sandbox.shipstation.v2.ids import (
    carrier_id_for,
    label_batch_id,
    optional_se_id,
    se_id,
)
from shipnav_dagster.sandbox.shipstation.v2.times import midnight_text, pacific_instant, utc_text

Record = dict[str, Any]

CURRENCY = "usd"
# The sandbox account's ship-from location (V1 records only carry its warehouseId).
WAREHOUSE_ADDRESS: Record = {
    "instructions": None,
    "name": "Shipping Department",
    "phone": "555-010-0100",
    "email": None,
    "company_name": "Sandbox Outfitters",
    "address_line1": "1200 Harbor Way",
    "address_line2": None,
    "address_line3": None,
    "city_locality": "Oakland",
    "state_province": "CA",
    "postal_code": "94607",
    "country_code": "US",
    "address_residential_indicator": "no",
}
# What ShipStation reports as the provider of an order marked shipped by hand (UI or API).
EXTERNAL_PROVIDER = {
    "fulfillment_provider_id": se_id(10_001),
    "fulfillment_provider_friendly_name": "External",
    "fulfillment_provider_code": "external",
    "fulfillment_service_code": "ext",
}
# V1 orderStatus -> V2 shipment_status (pending | processing | label_purchased | cancelled).
SHIPMENT_STATUS = {
    "awaiting_payment": "pending",
    "awaiting_shipment": "pending",
    "on_hold": "pending",
    "pending_fulfillment": "processing",
    "shipped": "label_purchased",
    "cancelled": "cancelled",
}
_TRACKING_URLS = {
    "ups": "https://www.ups.com/track?tracknum={}",
    "fedex": "https://www.fedex.com/fedextrack/?action=track&trackingnumber={}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction.action?tLabels={}",
    "stamps_com": "https://tools.usps.com/go/TrackConfirmAction.action?tLabels={}",
    "dhl_express": "https://www.dhl.com/en/express/tracking.html?AWB={}",
}


# ---------------------------------------------------------------------------------------------
# Small parts


def money(amount: float | None) -> Record:
    return {"currency": CURRENCY, "amount": round(float(amount or 0.0), 2)}


def ounces(weight: Record | None) -> Record:
    value = (weight or {}).get("value") or 0.0
    return {"value": float(value), "unit": "ounce"}


def inches(dimensions: Record | None) -> Record | None:
    if not dimensions:
        return None
    return {
        "unit": "inch",
        "length": float(dimensions.get("length") or 0.0),
        "width": float(dimensions.get("width") or 0.0),
        "height": float(dimensions.get("height") or 0.0),
    }


def address(v1: Record | None, email: str | None = None) -> Record:
    """A V1 Address as a V2 ``shipping_address_to``.

    Required strings the V1 record leaves empty come back as ``""`` (captured V2 responses carry
    empty strings too, e.g. ``"address_line2": ""``); optional ones stay null.
    """
    a = v1 or {}
    residential = a.get("residential")
    return {
        "instructions": None,
        "name": a.get("name") or "",
        "phone": a.get("phone") or "",
        "email": email,
        "company_name": a.get("company"),
        "address_line1": a.get("street1") or "",
        "address_line2": a.get("street2"),
        "address_line3": a.get("street3"),
        "city_locality": a.get("city") or "",
        "state_province": a.get("state") or "",
        "postal_code": a.get("postalCode") or "",
        "country_code": a.get("country") or "",
        "address_residential_indicator": "unknown"
        if residential is None
        else ("yes" if residential else "no"),
    }


def confirmation(value: object) -> str:
    return value if isinstance(value, str) and value else "none"


# ---------------------------------------------------------------------------------------------
# Labels (V1 shipments)


def label_status(shipment: Record) -> str:
    return "voided" if shipment.get("voided") else "completed"


def label_modified(shipment: Record) -> datetime | None:
    """When the label last changed: its void, else its creation (labels carry no modified_at)."""
    return pacific_instant(shipment.get("voidDate")) or pacific_instant(shipment.get("createDate"))


def _downloads(base_url: str, shipment_id: int, kind: str) -> Record:
    token = hashlib.blake2b(f"{kind}:{shipment_id}".encode(), digest_size=12).hexdigest()
    stem = f"{base_url}/v2/downloads/10/{token}/{kind}-{shipment_id}"
    return {"pdf": f"{stem}.pdf", "png": f"{stem}.png", "zpl": f"{stem}.zpl", "href": f"{stem}.pdf"}


def label(shipment: Record, base_url: str) -> Record:
    """A V1 shipment record as a V2 ``label``.

    The world stores one tracking number per V1 shipment (a multi-box order is several labels),
    so every label has exactly one package, carrying that tracking number.
    """
    number = shipment["shipmentId"]
    carrier = shipment.get("carrierCode")
    tracking = shipment.get("trackingNumber")
    package_download = _downloads(base_url, number, "labelpackage")
    del package_download["href"]
    package: Record = {
        "package_id": number % 2**31,
        "package_code": shipment.get("packageCode") or "package",
        "weight": ounces(shipment.get("weight")),
        "insured_value": money((shipment.get("insuranceOptions") or {}).get("insuredValue")),
        "tracking_number": tracking,
        "label_download": package_download,
        "label_messages": {"reference1": None, "reference2": None, "reference3": None},
        "content_description": None,
        "sequence": 1,
        "alternative_identifiers": [],
        "has_label_documents": False,
        "has_form_documents": False,
        "has_qr_code_documents": False,
        "has_paperless_label_documents": False,
    }
    dimensions = inches(shipment.get("dimensions"))
    if dimensions is not None:
        package["dimensions"] = dimensions
    ship_to = shipment.get("shipTo") or {}
    tracking_url = _TRACKING_URLS.get(carrier or "")
    return {
        "label_id": se_id(number),
        "status": label_status(shipment),
        "shipment_id": optional_se_id(shipment.get("orderId")),
        "external_shipment_id": shipment.get("orderKey"),
        "external_order_id": None,
        "ship_date": midnight_text(shipment.get("shipDate")),
        "created_at": utc_text(shipment.get("createDate")),
        "shipment_cost": money(shipment.get("shipmentCost")),
        "insurance_cost": money(shipment.get("insuranceCost")),
        "tracking_number": tracking,
        "is_return_label": bool(shipment.get("isReturnLabel")),
        "rma_number": None,
        "is_international": (ship_to.get("country") or "US") != "US",
        "batch_id": label_batch_id(shipment),
        "carrier_id": carrier_id_for(carrier),
        "service_code": shipment.get("serviceCode"),
        "package_code": shipment.get("packageCode") or "package",
        "voided": bool(shipment.get("voided")),
        "voided_at": utc_text(shipment.get("voidDate")),
        "label_format": "pdf",
        "display_scheme": "label",
        "label_layout": "4x6",
        "trackable": tracking_url is not None,
        "label_image_id": None,
        "carrier_code": carrier,
        "confirmation": confirmation(shipment.get("confirmation")),
        "tracking_status": "unknown",
        "label_download": _downloads(base_url, number, "label"),
        "form_download": None,
        "qr_code_download": None,
        "insurance_claim": None,
        "paperless_download": None,
        "packages": [package],
        "charge_event": "carrier_default",
        "alternative_identifiers": [],
        "tracking_url": tracking_url.format(tracking) if tracking_url and tracking else None,
        "ship_to": address(shipment.get("shipTo"), shipment.get("customerEmail")),
    }


# ---------------------------------------------------------------------------------------------
# Shipments (V1 orders)


def shipment_number(order: Record, orders: Mapping[int, Record]) -> str | None:
    """The V2 ``shipment_number``: that of the order a split shipment was split off, else its own."""
    seen: set[int] = set()
    current = order
    while True:
        parent_id = (current.get("advancedOptions") or {}).get("parentId")
        if not isinstance(parent_id, int) or parent_id in seen or parent_id not in orders:
            return current.get("orderNumber")
        seen.add(parent_id)
        current = orders[parent_id]


def shipment_status(order: Record) -> str:
    return SHIPMENT_STATUS.get(order.get("orderStatus") or "", "pending")


def _item(item: Record) -> Record:
    out: Record = {
        "name": item.get("name") or "",
        "sales_order_id": None,
        "sales_order_item_id": None,
        "quantity": int(item.get("quantity") or 0),
        "sku": item.get("sku"),
        "bundle_sku": None,
        "external_order_id": None,
        "external_order_item_id": item.get("lineItemKey"),
        "asin": None,
        "item_id": str(item["orderItemId"]) if item.get("orderItemId") is not None else None,
        "allocation_status": None,
        "image_url": item.get("imageUrl"),
        "unit_price": item.get("unitPrice"),
        "tax_amount": item.get("taxAmount"),
        "shipping_amount": item.get("shippingAmount"),
        "inventory_location": item.get("warehouseLocation"),
        "options": [
            {"name": str(o.get("name") or ""), "value": str(o.get("value") or "")}
            for o in item.get("options") or []
            if isinstance(o, dict)
        ],
        "product_id": str(item["productId"]) if item.get("productId") is not None else None,
        "fullfilment_sku": item.get("fulfillmentSku"),  # sic: the spec's spelling
        "upc": item.get("upc"),
    }
    if item.get("weight"):
        out["weight"] = ounces(item["weight"])
    return out


def _insurance_provider(order: Record) -> str:
    provider = (order.get("insuranceOptions") or {}).get("provider")
    if not provider:
        return "none"
    return provider if provider in ("shipsurance", "carrier") else "third_party"


def _advanced_options(options: Record) -> Record:
    return {
        "bill_to_account": options.get("billToAccount"),
        "bill_to_country_code": options.get("billToCountryCode"),
        "bill_to_party": options.get("billToParty"),
        "bill_to_postal_code": options.get("billToPostalCode"),
        "contains_alcohol": bool(options.get("containsAlcohol")),
        "delivered_duty_paid": False,
        "dry_ice": False,
        "dry_ice_weight": None,
        "non_machinable": bool(options.get("nonMachinable")),
        "saturday_delivery": bool(options.get("saturdayDelivery")),
        "use_ups_ground_freight_pricing": None,
        "freight_class": None,
        "custom_field1": options.get("customField1"),
        "custom_field2": options.get("customField2"),
        "custom_field3": options.get("customField3"),
        "origin_type": None,
        "additional_handling": None,
        "shipper_release": None,
        "third_party_consignee": False,
        "dangerous_goods": False,
        "own_document_upload": False,
        "limited_quantity": False,
        "event_notification": False,
    }


def shipment(order: Record, orders: Mapping[int, Record]) -> Record:
    """A V1 order record as a V2 ``shipment`` (``orders``: all of them, to resolve split numbers).

    Adjustment pseudo-lines (discount codes with a negative price) are not goods and are left out
    of ``items``; the V2 item schema has no negative prices.
    """
    options = order.get("advancedOptions") or {}
    package: Record = {
        "package_code": order.get("packageCode") or "package",
        "weight": ounces(order.get("weight")),
        "insured_value": money((order.get("insuranceOptions") or {}).get("insuredValue")),
        "products": [],
    }
    dimensions = inches(order.get("dimensions"))
    if dimensions is not None:
        package["dimensions"] = dimensions
    return {
        "shipment_id": se_id(order["orderId"]),
        "carrier_id": carrier_id_for(order.get("carrierCode")),
        "service_code": order.get("serviceCode"),
        "requested_shipment_service": order.get("requestedShippingService"),
        "shipping_rule_id": None,
        "external_order_id": None,
        "hold_until_date": midnight_text(order.get("holdUntilDate")),
        "ship_by_date": utc_text(order.get("shipByDate")),
        "retail_rate": None,
        "store_id": optional_se_id(options.get("storeId")),
        "items": [_item(i) for i in order.get("items") or [] if not i.get("adjustment")],
        "notes_from_buyer": order.get("customerNotes"),
        "notes_for_gift": order.get("giftMessage"),
        "is_gift": bool(order.get("gift")),
        "assigned_user": None,
        "amount_paid": money(order.get("amountPaid")),
        "shipping_paid": money(order.get("shippingAmount")),
        "tax_paid": money(order.get("taxAmount")),
        "zone": None,
        "display_scheme": None,
        "tax_identifiers": None,
        "external_shipment_id": order.get("orderKey"),
        "shipment_number": shipment_number(order, orders),
        "ship_date": midnight_text(order.get("shipDate")),
        "created_at": utc_text(order.get("createDate")),
        "modified_at": utc_text(order.get("modifyDate")),
        "shipment_status": shipment_status(order),
        "ship_to": address(order.get("shipTo"), order.get("customerEmail")),
        "ship_from": dict(WAREHOUSE_ADDRESS),
        "warehouse_id": optional_se_id(options.get("warehouseId")),
        "return_to": dict(WAREHOUSE_ADDRESS),
        "is_return": False,
        "confirmation": confirmation(order.get("confirmation")),
        "customs": None,
        "advanced_options": _advanced_options(options),
        "insurance_provider": _insurance_provider(order),
        "tags": [],
        "packages": [package],
        "total_weight": ounces(order.get("weight")),
        "comparison_rate_type": None,
    }


# ---------------------------------------------------------------------------------------------
# Fulfillments


def fulfillment_provider_code(fulfillment: Record) -> str:
    return fulfillment.get("fulfillmentProviderCode") or EXTERNAL_PROVIDER["fulfillment_provider_code"]


def fulfillment_number(record: Record, orders: Mapping[int, Record]) -> str | None:
    order = orders.get(record.get("orderId"))  # type: ignore[arg-type]
    return record.get("orderNumber") if order is None else shipment_number(order, orders)


def fulfillment(record: Record, orders: Mapping[int, Record]) -> Record:
    """A V1 fulfillment record as a V2 fulfillment (fields of docs.shipstation.com/list-fulfillments)."""
    provider = dict(EXTERNAL_PROVIDER)
    if record.get("sellerFillProviderId") is not None:
        provider.update(
            fulfillment_provider_id=se_id(record["sellerFillProviderId"]),
            fulfillment_provider_friendly_name=record.get("sellerFillProviderName") or "",
            fulfillment_provider_code=fulfillment_provider_code(record),
            fulfillment_service_code=record.get("fulfillmentServiceCode") or "",
        )
    return {
        "fulfillment_id": se_id(record["fulfillmentId"]),
        "shipment_id": optional_se_id(record.get("orderId")),
        "shipment_number": fulfillment_number(record, orders),
        "user_id": record.get("userId"),
        "tracking_number": record.get("trackingNumber"),
        "created_at": utc_text(record.get("createDate")),
        "ship_date": midnight_text(record.get("shipDate")),
        "voided_at": utc_text(record.get("voidDate")),
        "delivered_at": utc_text(record.get("deliveryDate")),
        "fulfillment_carrier_friendly_name": record.get("carrierCode"),
        **provider,
        "fulfillment_fee": money(record.get("fulfillmentFee")),
        "void_requested": bool(record.get("voidRequested")),
        "voided": bool(record.get("voided")),
        "order_source_notified": bool(record.get("marketplaceNotified")),
        "notification_error_message": record.get("notifyErrorMessage"),
        "ship_to": address(record.get("shipTo"), record.get("customerEmail")),
    }


def fulfillment_modified(record: Record) -> datetime | None:
    return pacific_instant(record.get("voidDate")) or pacific_instant(record.get("createDate"))
