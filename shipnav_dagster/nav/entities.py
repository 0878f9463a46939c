"""The NAV page fields shipnav reads and writes, and the value types built from OData entities.

Every NAV field name shipnav uses is spelled here: page 42 "Sales Order" (`SalesOrder`), its
lines page 46 (`SalesOrderSalesLines`) and page 130 "Posted Sales Shipment"
(`PostedSalesShipment`). OData names are the page control names with spaces and dots replaced by
underscores ("Package Tracking No." -> `Package_Tracking_No`).
"""

from datetime import date
from typing import Any

from shipnav_dagster.core.model import NavOrder, NavPostedShipment, NavSalesLine

SALES_ORDER_SELECT = [
    "Document_Type",
    "No",
    "External_Document_No",
    "Sell_to_Customer_Name",
    "Order_Date",
    "Status",
    "Package_Tracking_No",
    "Shipping_Agent_Code",
    "Shipping_Agent_Service_Code",
    "Shipment_Date",
]
POSTED_SELECT = [
    "No",
    "Order_No",
    "External_Document_No",
    "Posting_Date",
    "Package_Tracking_No",
    "Shipping_Agent_Code",
    "Shipping_Agent_Service_Code",
]
LINE_SELECT = [
    "Document_Type",
    "Document_No",
    "Line_No",
    "Type",
    "No",
    "Quantity",
    "Qty_to_Ship",
    "Quantity_Shipped",
]
TRACKING_FIELD = "Package_Tracking_No"


def nav_date(value: object) -> date | None:
    """NAV sends blank dates as 0001-01-01 (AL's 0D)."""
    if not value:
        return None
    parsed = date.fromisoformat(str(value)[:10])
    return None if parsed.year == 1 else parsed


def nav_order(entity: dict[str, Any]) -> NavOrder:
    return NavOrder(
        no=entity["No"],
        external_document_no=entity.get("External_Document_No") or "",
        customer_name=entity.get("Sell_to_Customer_Name") or "",
        order_date=nav_date(entity.get("Order_Date")),
        status=entity.get("Status") or "Open",
        etag=entity.get("@odata.etag") or "",
        package_tracking_no=entity.get("Package_Tracking_No") or "",
        shipping_agent_code=entity.get("Shipping_Agent_Code") or "",
        shipping_agent_service_code=entity.get("Shipping_Agent_Service_Code") or "",
        shipment_date=nav_date(entity.get("Shipment_Date")),
    )


def posted_shipment(entity: dict[str, Any]) -> NavPostedShipment:
    return NavPostedShipment(
        no=entity["No"],
        order_no=entity.get("Order_No") or "",
        external_document_no=entity.get("External_Document_No") or "",
        etag=entity.get("@odata.etag") or "",
        posting_date=nav_date(entity.get("Posting_Date")),
        package_tracking_no=entity.get("Package_Tracking_No") or "",
        shipping_agent_code=entity.get("Shipping_Agent_Code") or "",
        shipping_agent_service_code=entity.get("Shipping_Agent_Service_Code") or "",
    )


def sales_line(entity: dict[str, Any]) -> NavSalesLine:
    return NavSalesLine(
        line_no=int(entity["Line_No"]),
        type=entity.get("Type") or "",
        no=entity.get("No") or "",
        quantity=float(entity.get("Quantity") or 0),
        qty_to_ship=float(entity.get("Qty_to_Ship") or 0),
        quantity_shipped=float(entity.get("Quantity_Shipped") or 0),
        etag=entity.get("@odata.etag") or "",
    )
