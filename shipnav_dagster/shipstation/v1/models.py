"""Pydantic models of the ShipStation V1 objects shipnav reads.

Tolerant by design (reference/shipstation.md §3): every field may be null, unknown fields are kept
(``extra="allow"``), ``null`` list items are dropped, and each model keeps the exact payload it was
built from in ``.raw`` because the ledger stores the raw record. Attributes are snake_case, the
API's camelCase names are the aliases (both accepted). Timestamps (naive Pacific on the wire)
become aware UTC datetimes; date-only fields become ``date``.
"""

from datetime import date, datetime
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shipnav_dagster.shipstation.v1.timeutil import PACIFIC, parse_pacific, parse_pacific_date


def _to_utc(value: object) -> object:
    """API strings are Pacific wall-clock; a naive datetime built in code is read the same way."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return parse_pacific(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=PACIFIC)
    return value


def _to_date(value: object) -> object:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return parse_pacific_date(value)
    if isinstance(value, datetime):
        return value.date()
    return value


def _drop_nulls(value: object) -> object:
    """ShipStation has been seen returning ``null`` inside lists; skip them rather than fail."""
    if isinstance(value, list):
        return [item for item in value if item is not None]
    return value


PacificDateTime = Annotated[datetime | None, BeforeValidator(_to_utc)]
PacificDate = Annotated[date | None, BeforeValidator(_to_date)]
T = TypeVar("T")
NullSkippingList = Annotated[list[T], BeforeValidator(_drop_nulls)]


class ShipStationModel(BaseModel):
    """Base: camelCase aliases, unknown fields kept, original payload in ``.raw``."""

    # coerce_numbers_to_str: ids such as orderNumber/batchNumber are strings in the docs but
    # numeric-looking; a server sending them as JSON numbers must not break a whole page.
    model_config = ConfigDict(
        extra="allow", populate_by_name=True, alias_generator=to_camel, coerce_numbers_to_str=True
    )

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        model = handler(data)
        if isinstance(data, dict) and isinstance(model, ShipStationModel):
            model._raw = data
        return model

    @property
    def raw(self) -> dict[str, Any]:
        """The payload exactly as ShipStation sent it (empty for models built from attributes)."""
        return self._raw

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Self:
        return cls.model_validate(data)


class Address(ShipStationModel):
    name: str | None = None
    company: str | None = None
    street1: str | None = None
    street2: str | None = None
    street3: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    phone: str | None = None
    residential: bool | None = None
    address_verified: str | None = None


class Weight(ShipStationModel):
    value: float | None = None
    units: str | None = None
    # Undocumented PascalCase field seen in real responses (1 = ounces).
    weight_units: int | None = Field(
        default=None, validation_alias=AliasChoices("WeightUnits", "weightUnits", "weight_units")
    )


class Dimensions(ShipStationModel):
    units: str | None = None
    length: float | None = None
    width: float | None = None
    height: float | None = None


class InsuranceOptions(ShipStationModel):
    provider: str | None = None
    insure_shipment: bool | None = None
    insured_value: float | None = None


class AdvancedOptions(ShipStationModel):
    warehouse_id: int | None = None
    non_machinable: bool | None = None
    saturday_delivery: bool | None = None
    contains_alcohol: bool | None = None
    store_id: int | None = None
    custom_field1: str | None = None
    custom_field2: str | None = None
    custom_field3: str | None = None
    source: str | None = None
    merged_or_split: bool | None = None
    merged_ids: NullSkippingList[int] | None = None
    parent_id: int | None = None
    bill_to_party: str | None = None
    bill_to_account: str | None = None
    bill_to_postal_code: str | None = None
    bill_to_country_code: str | None = None
    bill_to_my_other_account: Any = None


class ItemOption(ShipStationModel):
    name: str | None = None
    value: str | None = None


class OrderItem(ShipStationModel):
    order_item_id: int | None = None
    line_item_key: str | None = None
    sku: str | None = None
    name: str | None = None
    image_url: str | None = None
    weight: Weight | None = None
    quantity: int | None = None
    unit_price: float | None = None
    tax_amount: float | None = None
    shipping_amount: float | None = None
    warehouse_location: str | None = None
    options: NullSkippingList[ItemOption] | None = None
    product_id: int | None = None
    fulfillment_sku: str | None = None
    adjustment: bool | None = None
    upc: str | None = None
    create_date: PacificDateTime = None
    modify_date: PacificDateTime = None


class ShipmentItem(OrderItem):
    """Items of a shipment (``includeShipmentItems=true``); the same shape as order items."""


class Shipment(ShipStationModel):
    """One purchased label."""

    shipment_id: int
    order_id: int | None = None
    order_key: str | None = None
    user_id: str | None = None
    customer_email: str | None = None
    order_number: str | None = None
    create_date: PacificDateTime = None
    ship_date: PacificDate = None
    shipment_cost: float | None = None
    insurance_cost: float | None = None
    tracking_number: str | None = None
    is_return_label: bool | None = None
    batch_number: str | None = None
    carrier_code: str | None = None
    service_code: str | None = None
    package_code: str | None = None
    confirmation: str | None = None
    warehouse_id: int | None = None
    voided: bool | None = None
    void_date: PacificDateTime = None
    marketplace_notified: bool | None = None
    notify_error_message: str | None = None
    ship_to: Address | None = None
    weight: Weight | None = None
    dimensions: Dimensions | None = None
    insurance_options: InsuranceOptions | None = None
    advanced_options: AdvancedOptions | None = None
    shipment_items: NullSkippingList[ShipmentItem] | None = None
    label_data: str | None = None
    form_data: str | None = None

    @property
    def store_id(self) -> int | None:
        return self.advanced_options.store_id if self.advanced_options else None


class Order(ShipStationModel):
    order_id: int
    order_number: str | None = None
    order_key: str | None = None
    order_date: PacificDateTime = None
    create_date: PacificDateTime = None
    modify_date: PacificDateTime = None
    payment_date: PacificDateTime = None
    ship_by_date: PacificDate = None
    order_status: str | None = None
    customer_id: int | None = None
    customer_username: str | None = None
    customer_email: str | None = None
    bill_to: Address | None = None
    ship_to: Address | None = None
    items: NullSkippingList[OrderItem] | None = None
    order_total: float | None = None
    amount_paid: float | None = None
    tax_amount: float | None = None
    shipping_amount: float | None = None
    customer_notes: str | None = None
    internal_notes: str | None = None
    gift: bool | None = None
    gift_message: str | None = None
    payment_method: str | None = None
    requested_shipping_service: str | None = None
    carrier_code: str | None = None
    service_code: str | None = None
    package_code: str | None = None
    confirmation: str | None = None
    ship_date: PacificDate = None
    hold_until_date: PacificDate = None
    weight: Weight | None = None
    dimensions: Dimensions | None = None
    insurance_options: InsuranceOptions | None = None
    international_options: dict[str, Any] | None = None
    advanced_options: AdvancedOptions | None = None
    tag_ids: NullSkippingList[int] | None = None
    user_id: str | None = None
    externally_fulfilled: bool | None = None
    externally_fulfilled_by: str | None = None

    @property
    def store_id(self) -> int | None:
        return self.advanced_options.store_id if self.advanced_options else None


class Fulfillment(ShipStationModel):
    """An order marked as shipped outside ShipStation's label flow (or by a fill provider)."""

    fulfillment_id: int
    order_id: int | None = None
    order_number: str | None = None
    user_id: str | None = None
    customer_email: str | None = None
    tracking_number: str | None = None
    create_date: PacificDateTime = None
    # Sent as a Pacific midnight datetime; it means a calendar date.
    ship_date: PacificDate = None
    void_date: PacificDateTime = None
    delivery_date: PacificDateTime = None
    # Free text here ("USPS", "FedEx"), unlike the normalised codes on shipments.
    carrier_code: str | None = None
    seller_fill_provider_id: int | None = None
    seller_fill_provider_name: str | None = None
    fulfillment_provider_code: str | None = None
    fulfillment_service_code: str | None = None
    fulfillment_fee: float | None = None
    void_requested: bool | None = None
    voided: bool | None = None
    marketplace_notified: bool | None = None
    notify_error_message: str | None = None
    ship_to: Address | None = None


class Store(ShipStationModel):
    store_id: int
    store_name: str | None = None
    marketplace_id: int | None = None
    marketplace_name: str | None = None
    account_name: str | None = None
    email: str | None = None
    integration_url: str | None = None
    active: bool | None = None
    company_name: str | None = None
    phone: str | None = None
    public_email: str | None = None
    website: str | None = None
    refresh_date: PacificDateTime = None
    last_refresh_attempt: PacificDateTime = None
    create_date: PacificDateTime = None
    modify_date: PacificDateTime = None
    auto_refresh: bool | None = None
    status_mappings: Any = None


M = TypeVar("M", bound=ShipStationModel)


class Page(BaseModel, Generic[M]):
    """One list response: ``{"<collection>": [...], "total": n, "page": n, "pages": n}``."""

    model_config = ConfigDict(extra="allow")

    items: NullSkippingList[M] = Field(default_factory=list)
    total: int | None = None
    page: int | None = None
    pages: int | None = None
    # How many entries the server sent, nulls included (a "full page" is judged on this).
    received: int = 0

    @classmethod
    def from_api(cls, data: dict[str, Any], collection: str) -> Self:
        raw_items = data.get(collection)
        if raw_items is None:
            raw_items = []
        if not isinstance(raw_items, list):
            raise ValueError(f"{collection!r} is not a list in the response")
        return cls.model_validate(
            {
                "items": raw_items,
                "total": data.get("total"),
                "page": data.get("page"),
                "pages": data.get("pages"),
                "received": len(raw_items),
            }
        )
