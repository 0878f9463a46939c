"""JSON Schemas (draft 2020-12) of the ShipStation API v2 response bodies the sandbox serves.

Written by hand from reading the official OpenAPI 3.1 description ("ShipStation API v2" 2.0.0,
published in the shipstation/mcp-shipstation-api repository, Aug 2025), which is not copied
here. Each ``$defs`` entry names the spec component it corresponds to in ``SPEC_COMPONENTS``;
``scripts/check_v2_schemas.py`` compares the two (required properties and types) against a local
checkout of the spec.

How the spec is read:
* ``x-nullable: true`` (a Swagger 2 leftover that JSON Schema ignores) is written as a union with
  ``null``; captured production responses carry those nulls.
* ``additionalProperties: false`` beside ``allOf`` in the spec is read as "no properties beyond
  the ones of the composed schemas" (its literal JSON Schema meaning would forbid every property).
* Length and pattern limits on strings that production responses break (``company_name: ""``,
  ``address_line2: ""``) are not repeated; the weight schema's ``exclusiveMinimum`` (a Swagger 2
  boolean turned into a number) is read as the ``minimum: 0`` it sits beside.

Fulfillments are not in the Aug 2025 spec; their schemas follow
https://docs.shipstation.com/list-fulfillments and https://docs.shipstation.com/create-fulfillments.
"""

from typing import Any

Schema = dict[str, Any]


def _nullable(schema: Schema) -> Schema:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*kinds, "null"]}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/$defs/{name}"}


def _object(properties: Schema, required: tuple[str, ...] = ()) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


STRING: Schema = {"type": "string"}
TEXT: Schema = {"type": "string", "minLength": 1}
BOOLEAN: Schema = {"type": "boolean"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
OPTIONAL_TEXT = _nullable(STRING)

DEFS: dict[str, Schema] = {
    # -- scalars ---------------------------------------------------------------------------
    "se_id": {"type": "string", "pattern": r"^se(-[a-z0-9]+)+$", "maxLength": 25},
    # ISO-8601 instant with a UTC "Z" or a numeric offset.
    "date_time": {
        "type": "string",
        "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
    },
    # A calendar date, optionally with a time and offset.
    "date": {
        "type": "string",
        "pattern": r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?$",
    },
    "uuid": {"type": "string", "pattern": r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$"},
    "url": TEXT,
    "carrier_code": {"type": "string", "pattern": r"^[a-z0-9]+(_[a-z0-9]+)*$"},
    "service_code": {"type": "string", "pattern": r"^[a-z0-9]+(_[a-z0-9-]+)* ?$"},
    "package_code": {"type": "string", "pattern": r"^[a-z0-9]+(_[a-z0-9]+)*$", "maxLength": 50},
    "label_status": {"enum": ["processing", "completed", "error", "voided"]},
    "label_format": {"enum": ["pdf", "png", "zpl"]},
    "label_layout": {"enum": ["4x6", "letter"]},
    "display_scheme": {"enum": ["label", "label_and_paperless", "label_and_qr_code", "paperless", "qr_code"]},
    "bill_to_party": {"enum": ["recipient", "third_party"]},
    "origin_type": {"enum": ["drop_off", "pickup"]},
    "order_source_name": {
        "enum": [
            "amazon_ca",
            "amazon_us",
            "brightpearl",
            "channel_advisor",
            "cratejoy",
            "ebay",
            "etsy",
            "jane",
            "groupon_goods",
            "magento",
            "paypal",
            "seller_active",
            "shopify",
            "stitch_labs",
            "squarespace",
            "three_dcart",
            "tophatter",
            "walmart",
            "woo_commerce",
            "volusion",
        ]
    },
    "shipment_status": {"enum": ["pending", "processing", "label_purchased", "cancelled"]},
    "delivery_confirmation": {
        "enum": [
            "none",
            "delivery",
            "signature",
            "adult_signature",
            "direct_signature",
            "delivery_mailed",
            "verbal_confirmation",
        ]
    },
    "tracking_status": {"enum": ["unknown", "in_transit", "error", "delivered"]},
    "label_charge_event": {"enum": ["carrier_default", "on_creation", "on_carrier_acceptance"]},
    "insurance_provider": {"enum": ["none", "shipsurance", "carrier", "third_party"]},
    "address_residential_indicator": {"enum": ["unknown", "yes", "no"]},
    "weight_unit": {"enum": ["pound", "ounce", "gram", "kilogram"]},
    "dimension_unit": {"enum": ["inch", "centimeter"]},
    # -- small objects -----------------------------------------------------------------------
    "monetary_value": _object(
        {"currency": STRING, "amount": {"type": "number", "minimum": 0}}, ("currency", "amount")
    ),
    "weight": _object(
        {"value": {"type": "number", "minimum": 0}, "unit": _ref("weight_unit")}, ("value", "unit")
    ),
    "dimensions": _object(
        {
            "unit": _ref("dimension_unit"),
            "length": {"type": "number", "minimum": 0},
            "width": {"type": "number", "minimum": 0},
            "height": {"type": "number", "minimum": 0},
        },
        ("unit", "length", "width", "height"),
    ),
    "optional_link": _object({"href": _ref("url"), "type": TEXT}),
    "link": _object({"href": _ref("url"), "type": TEXT}, ("href",)),
    "pagination_link": _object(
        {
            "first": _ref("link"),
            "last": _ref("link"),
            "prev": _ref("optional_link"),
            "next": _ref("optional_link"),
        },
        ("first", "last", "prev", "next"),
    ),
    "label_download": _object(
        {"href": _ref("url"), "pdf": _ref("url"), "png": _ref("url"), "zpl": _ref("url")}
    ),
    "alternative_identifier": _object({"type": TEXT, "value": TEXT}),
    "tag": _object({"name": TEXT}, ("name",)),
    # address + partial_shipping_address_to, as composed by shipping_address_to
    "shipping_address_to": _object(
        {
            "instructions": OPTIONAL_TEXT,
            "geolocation": {"type": "array", "items": {"type": "object"}},
            "name": STRING,
            "phone": STRING,
            "email": OPTIONAL_TEXT,
            "company_name": OPTIONAL_TEXT,
            "address_line1": STRING,
            "address_line2": OPTIONAL_TEXT,
            "address_line3": OPTIONAL_TEXT,
            "city_locality": STRING,
            "state_province": STRING,
            "postal_code": STRING,
            "country_code": STRING,
            "address_residential_indicator": _ref("address_residential_indicator"),
        },
        (
            "name",
            "phone",
            "address_line1",
            "city_locality",
            "state_province",
            "postal_code",
            "country_code",
            "address_residential_indicator",
        ),
    ),
    # address + partial_shipping_address, as composed by shipping_address
    "shipping_address": _object(
        {
            "instructions": OPTIONAL_TEXT,
            "name": STRING,
            "phone": STRING,
            "email": OPTIONAL_TEXT,
            "company_name": OPTIONAL_TEXT,
            "address_line1": STRING,
            "address_line2": OPTIONAL_TEXT,
            "address_line3": OPTIONAL_TEXT,
            "city_locality": STRING,
            "state_province": STRING,
            "postal_code": STRING,
            "country_code": STRING,
            "address_residential_indicator": _ref("address_residential_indicator"),
        },
        (
            "name",
            "phone",
            "address_line1",
            "city_locality",
            "state_province",
            "postal_code",
            "country_code",
            "address_residential_indicator",
        ),
    ),
    # -- labels ------------------------------------------------------------------------------
    # label_package, with the alternative_identifiers block the spec adds where label uses it
    "label_package": _object(
        {
            "package_id": INTEGER,
            "package_code": _ref("package_code"),
            "weight": _ref("weight"),
            "dimensions": _ref("dimensions"),
            "insured_value": _ref("monetary_value"),
            "tracking_number": TEXT,
            "label_download": _ref("label_download"),
            "form_download": _ref("optional_link"),
            "qr_code_download": _ref("optional_link"),
            "paperless_download": {"type": "object"},
            "label_messages": {"type": "object"},
            "external_package_id": TEXT,
            "content_description": _nullable({"type": "string", "maxLength": 35}),
            "sequence": INTEGER,
            "alternative_identifiers": _nullable({"type": "array", "items": _ref("alternative_identifier")}),
            "has_label_documents": BOOLEAN,
            "has_form_documents": BOOLEAN,
            "has_qr_code_documents": BOOLEAN,
            "has_paperless_label_documents": BOOLEAN,
        },
        ("weight",),
    ),
    "label": _object(
        {
            "label_id": _ref("se_id"),
            "status": _ref("label_status"),
            "shipment_id": _ref("se_id"),
            "external_shipment_id": _nullable({"type": "string", "maxLength": 50}),
            "external_order_id": OPTIONAL_TEXT,
            "ship_date": _ref("date"),
            "created_at": _ref("date_time"),
            "shipment_cost": _ref("monetary_value"),
            "insurance_cost": _ref("monetary_value"),
            "requested_comparison_amount": _ref("monetary_value"),
            "tracking_number": TEXT,
            "is_return_label": BOOLEAN,
            "rma_number": OPTIONAL_TEXT,
            "is_international": BOOLEAN,
            "batch_id": _ref("se_id"),
            "carrier_id": _ref("se_id"),
            "charge_event": _ref("label_charge_event"),
            "service_code": _ref("service_code"),
            "package_code": _ref("package_code"),
            "voided": BOOLEAN,
            "voided_at": _nullable(_ref("date_time")),
            "label_format": _ref("label_format"),
            "display_scheme": _ref("display_scheme"),
            "label_layout": _ref("label_layout"),
            "trackable": BOOLEAN,
            "label_image_id": OPTIONAL_TEXT,
            "carrier_code": _ref("carrier_code"),
            "confirmation": _ref("delivery_confirmation"),
            "tracking_status": _ref("tracking_status"),
            "label_download": _ref("label_download"),
            "form_download": _nullable(_ref("link")),
            "qr_code_download": _nullable(_ref("optional_link")),
            "paperless_download": _nullable({"type": "object"}),
            "insurance_claim": _nullable(_ref("link")),
            "packages": {"type": "array", "items": _ref("label_package")},
            "alternative_identifiers": _nullable({"type": "array", "items": _ref("alternative_identifier")}),
            "rate_details": {"type": "array", "items": {"type": "object"}},
            "tracking_url": OPTIONAL_TEXT,
            "ship_to": _ref("shipping_address_to"),
        },
    ),
    "list_labels_response_body": _object(
        {
            "labels": {"type": "array", "items": _ref("label")},
            "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1},
            "pages": {"type": "integer", "minimum": 0},
            "links": _ref("pagination_link"),
        },
        ("labels", "total", "page", "pages", "links"),
    ),
    "void_label_response_body": _object(
        {
            "approved": BOOLEAN,
            "message": STRING,
            "reason_code": {
                "enum": [
                    "unknown",
                    "unspecified",
                    "validation_failed",
                    "label_not_found_within_void_period",
                    "label_already_used",
                    "label_already_voided",
                    "contact_carrier",
                ]
            },
        },
        ("approved", "message"),
    ),
    # -- shipments ---------------------------------------------------------------------------
    "shipment_item": _object(
        {
            "name": STRING,
            "sales_order_id": OPTIONAL_TEXT,
            "sales_order_item_id": OPTIONAL_TEXT,
            "quantity": {"type": "integer", "minimum": 0},
            "sku": OPTIONAL_TEXT,
            "bundle_sku": OPTIONAL_TEXT,
            "external_order_id": OPTIONAL_TEXT,
            "external_order_item_id": OPTIONAL_TEXT,
            "asin": _nullable({"type": "string", "minLength": 10, "maxLength": 10}),
            "order_source_code": _ref("order_source_name"),
            "item_id": OPTIONAL_TEXT,
            "allocation_status": OPTIONAL_TEXT,
            "image_url": OPTIONAL_TEXT,
            "weight": _ref("weight"),
            "unit_price": _nullable({"type": "number", "minimum": 0}),
            "tax_amount": _nullable({"type": "number", "minimum": 0}),
            "shipping_amount": _nullable({"type": "number", "minimum": 0}),
            "inventory_location": OPTIONAL_TEXT,
            "options": {"type": "array", "items": {"type": "object"}},
            "product_id": OPTIONAL_TEXT,
            "fullfilment_sku": OPTIONAL_TEXT,
            "upc": OPTIONAL_TEXT,
        },
    ),
    "package": _object(
        {
            "shipment_package_id": _ref("se_id"),
            "package_id": _ref("se_id"),
            "package_code": _ref("package_code"),
            "package_name": STRING,
            "weight": _ref("weight"),
            "dimensions": _ref("dimensions"),
            "insured_value": _ref("monetary_value"),
            "label_messages": {"type": "object"},
            "external_package_id": TEXT,
            "tracking_number": TEXT,
            "content_description": _nullable({"type": "string", "maxLength": 35}),
            "products": {"type": "array", "items": {"type": "object"}},
        },
        ("weight",),
    ),
    "advanced_shipment_options": _object(
        {
            "bill_to_account": OPTIONAL_TEXT,
            "bill_to_country_code": OPTIONAL_TEXT,
            "bill_to_party": _nullable(_ref("bill_to_party")),
            "bill_to_postal_code": OPTIONAL_TEXT,
            "contains_alcohol": BOOLEAN,
            "delivered_duty_paid": BOOLEAN,
            "dry_ice": BOOLEAN,
            "dry_ice_weight": _nullable(_ref("weight")),
            "non_machinable": BOOLEAN,
            "saturday_delivery": BOOLEAN,
            "fedex_freight": {"type": "object"},
            "use_ups_ground_freight_pricing": _nullable(BOOLEAN),
            "freight_class": OPTIONAL_TEXT,
            "custom_field1": _nullable({"type": "string", "maxLength": 100}),
            "custom_field2": _nullable({"type": "string", "maxLength": 100}),
            "custom_field3": _nullable({"type": "string", "maxLength": 100}),
            "origin_type": _nullable(_ref("origin_type")),
            "additional_handling": _nullable(BOOLEAN),
            "shipper_release": _nullable(BOOLEAN),
            "collect_on_delivery": {"type": "object"},
            "third_party_consignee": BOOLEAN,
            "dangerous_goods": BOOLEAN,
            "dangerous_goods_contact": {"type": "object"},
            "windsor_framework_details": {"type": "object"},
            "ancillary_endorsements_option": OPTIONAL_TEXT,
            "return_pickup_attempts": _nullable(INTEGER),
            "own_document_upload": BOOLEAN,
            "limited_quantity": BOOLEAN,
            "event_notification": BOOLEAN,
        },
    ),
    # shipment = partial_shipment + the required list
    "shipment": _object(
        {
            "shipment_id": _ref("se_id"),
            "carrier_id": _nullable(_ref("se_id")),
            "service_code": _nullable(_ref("service_code")),
            "requested_shipment_service": OPTIONAL_TEXT,
            "shipping_rule_id": _nullable(_ref("se_id")),
            "external_order_id": OPTIONAL_TEXT,
            "hold_until_date": _nullable(_ref("date_time")),
            "ship_by_date": _nullable(_ref("date_time")),
            "retail_rate": _nullable(_ref("monetary_value")),
            "store_id": _ref("se_id"),
            "items": {"type": "array", "items": _ref("shipment_item")},
            "notes_from_buyer": OPTIONAL_TEXT,
            "notes_for_gift": OPTIONAL_TEXT,
            "is_gift": BOOLEAN,
            "assigned_user": OPTIONAL_TEXT,
            "amount_paid": _ref("monetary_value"),
            "shipping_paid": _ref("monetary_value"),
            "tax_paid": _ref("monetary_value"),
            "zone": _nullable({"type": "integer", "minimum": 0}),
            "display_scheme": OPTIONAL_TEXT,
            "tax_identifiers": _nullable({"type": "array", "items": {"type": "object"}}),
            "external_shipment_id": _nullable({"type": "string", "maxLength": 50}),
            "shipment_number": _nullable({"type": "string", "maxLength": 50}),
            "ship_date": _nullable(_ref("date")),
            "created_at": _ref("date_time"),
            "modified_at": _ref("date_time"),
            "shipment_status": _ref("shipment_status"),
            "ship_to": _ref("shipping_address_to"),
            "ship_from": _ref("shipping_address"),
            "warehouse_id": _nullable(_ref("se_id")),
            "return_to": _ref("shipping_address"),
            "is_return": _nullable(BOOLEAN),
            "confirmation": _ref("delivery_confirmation"),
            "customs": _nullable({"type": "object"}),
            "advanced_options": _ref("advanced_shipment_options"),
            "insurance_provider": _ref("insurance_provider"),
            "tags": {"type": "array", "items": _ref("tag")},
            "order_source_code": _ref("order_source_name"),
            "packages": {"type": "array", "minItems": 1, "items": _ref("package")},
            "total_weight": _ref("weight"),
            "comparison_rate_type": OPTIONAL_TEXT,
        },
        (
            "shipment_id",
            "created_at",
            "modified_at",
            "shipment_status",
            "ship_to",
            "ship_from",
            "return_to",
            "confirmation",
            "advanced_options",
            "insurance_provider",
            "tags",
            "packages",
            "total_weight",
        ),
    ),
    "list_shipments_response_body": _object(
        {
            "shipments": {"type": "array", "items": _ref("shipment")},
            "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1},
            "pages": {"type": "integer", "minimum": 1},
            "links": _ref("pagination_link"),
        },
        ("shipments", "total", "page", "pages", "links"),
    ),
    # -- fulfillments (docs only) ------------------------------------------------------------
    "fulfillment": _object(
        {
            "fulfillment_id": _ref("se_id"),
            "shipment_id": _ref("se_id"),
            "shipment_number": OPTIONAL_TEXT,
            "user_id": OPTIONAL_TEXT,
            "tracking_number": OPTIONAL_TEXT,
            "created_at": _ref("date_time"),
            "ship_date": _nullable(_ref("date_time")),
            "voided_at": _nullable(_ref("date_time")),
            "delivered_at": _nullable(_ref("date_time")),
            "fulfillment_carrier_friendly_name": OPTIONAL_TEXT,
            "fulfillment_provider_id": OPTIONAL_TEXT,
            "fulfillment_provider_friendly_name": OPTIONAL_TEXT,
            "fulfillment_provider_code": OPTIONAL_TEXT,
            "fulfillment_service_code": OPTIONAL_TEXT,
            "fulfillment_fee": _ref("monetary_value"),
            "void_requested": BOOLEAN,
            "voided": BOOLEAN,
            "order_source_notified": BOOLEAN,
            "notification_error_message": OPTIONAL_TEXT,
            "ship_to": _ref("shipping_address_to"),
        },
    ),
    "list_fulfillments_response_body": _object(
        {
            "fulfillments": {"type": "array", "items": _ref("fulfillment")},
            "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1},
            "pages": {"type": "integer", "minimum": 0},
            "links": _ref("pagination_link"),
        },
        ("fulfillments", "total", "page", "pages", "links"),
    ),
    "create_fulfillments_response_body": _object(
        {
            "has_errors": BOOLEAN,
            "fulfillments": {
                "type": "array",
                "items": _object(
                    {"shipment_id": STRING, "shipment_number": OPTIONAL_TEXT, "error_message": OPTIONAL_TEXT},
                    ("shipment_id", "error_message"),
                ),
            },
        },
        ("has_errors", "fulfillments"),
    ),
    # -- webhooks ----------------------------------------------------------------------------
    "webhook_header": {
        "type": "object",
        "properties": {"key": STRING, "value": STRING},
        "required": ["key", "value"],
    },
    "webhook": _object(
        {
            "webhook_id": _ref("se_id"),
            "url": _ref("url"),
            # The spec's webhook_event enum plus the V2 events of ShipStation's help centre.
            "event": {
                "enum": [
                    "batch",
                    "carrier_connected",
                    "order_source_refresh_complete",
                    "rate",
                    "report_complete",
                    "sales_orders_imported",
                    "track",
                    "BATCH_PROCESSED_V2",
                    "TRACK_EVENT_V2",
                    "SHIPMENT_CREATED_V2",
                    "LABEL_CREATED_V2",
                    "FULFILLMENT_SHIPPED_V2",
                ]
            },
            "headers": {"type": "array", "items": _ref("webhook_header")},
            # name and store_id: current docs (docs.shipstation.com/openapi/webhooks), not the spec.
            "name": STRING,
            "store_id": INTEGER,
        },
        ("webhook_id", "url", "event"),
    ),
    "list_webhooks_response_body": {"type": "array", "items": _ref("webhook")},
    # The body ShipStation POSTs to a subscribed URL.
    "webhook_notification": _object(
        {"resource_url": _ref("url"), "resource_type": STRING}, ("resource_url", "resource_type")
    ),
    # -- errors ------------------------------------------------------------------------------
    "error": _object(
        {
            "error_source": {"enum": ["carrier", "order_source", "ShipStation"]},
            "error_type": {
                "enum": [
                    "account_status",
                    "business_rules",
                    "validation",
                    "security",
                    "system",
                    "integrations",
                ]
            },
            "error_code": {
                "enum": [
                    "auto_fund_not_supported",
                    "batch_cannot_be_modified",
                    "carrier_conflict",
                    "carrier_disconnected",
                    "carrier_not_connected",
                    "carrier_not_supported",
                    "confirmation_not_supported",
                    "default_warehouse_cannot_be_deleted",
                    "field_conflict",
                    "field_value_required",
                    "forbidden",
                    "identifier_conflict",
                    "identifiers_must_match",
                    "insufficient_funds",
                    "invalid_address",
                    "invalid_billing_plan",
                    "invalid_field_value",
                    "invalid_identifier",
                    "invalid_status",
                    "invalid_string_length",
                    "label_images_not_supported",
                    "meter_failure",
                    "order_source_not_active",
                    "rate_limit_exceeded",
                    "refresh_not_supported",
                    "request_body_required",
                    "return_label_not_supported",
                    "settings_not_supported",
                    "subscription_inactive",
                    "terms_not_accepted",
                    "tracking_not_supported",
                    "trial_expired",
                    "unauthorized",
                    "unknown",
                    "unspecified",
                    "verification_failure",
                    "warehouse_conflict",
                    "webhook_event_type_conflict",
                    "customs_items_required",
                    "incompatible_paired_labels",
                    "invalid_charge_event",
                    "invalid_object",
                    "no_rates_returned",
                ]
            },
            "message": TEXT,
        },
        ("error_source", "error_type", "error_code", "message"),
    ),
    "error_response_body": _object(
        {"request_id": _ref("uuid"), "errors": {"type": "array", "items": _ref("error")}},
        ("request_id", "errors"),
    ),
}

# Our $defs name -> the spec component it was written from (None: not in the Aug 2025 spec).
SPEC_COMPONENTS: dict[str, str | None] = {
    "monetary_value": "monetary_value",
    "weight": "weight",
    "dimensions": "dimensions",
    "optional_link": "optional_link",
    "link": "link",
    "pagination_link": "pagination_link",
    "label_download": "label_download",
    "tag": "tag",
    "shipping_address_to": "shipping_address_to",
    "shipping_address": "shipping_address",
    "label_package": "label_package",
    "label": "label",
    "list_labels_response_body": "list_labels_response_body",
    "void_label_response_body": "void_label_response_body",
    "shipment_item": "shipment_item",
    "package": "package",
    "advanced_shipment_options": "advanced_shipment_options",
    "shipment": "shipment",
    "list_shipments_response_body": "list_shipments_response_body",
    "webhook_header": "webhook_header",
    "webhook": "get_webhook_by_id_response_body",
    "list_webhooks_response_body": "list_webhooks_response_body",
    "error": "error",
    "error_response_body": "error_response_body",
    "fulfillment": None,
    "list_fulfillments_response_body": None,
    "create_fulfillments_response_body": None,
    "webhook_notification": None,
}

# Differences from the spec made on purpose (reported as "known" by the checker).
KNOWN_DEVIATIONS: dict[str, str] = {
    "webhook.name": "current docs add name to webhooks; the Aug 2025 spec has none",
    "webhook.store_id": "current docs add store_id to webhooks; the Aug 2025 spec has none",
    "label_package.alternative_identifiers": "the spec adds it to label_package inside label.packages",
    "webhook.event": "accepts the help centre's V2 event names besides the spec's enum",
}


def component(name: str, *, required: tuple[str, ...] = ()) -> Schema:
    """A standalone schema for ``$defs[name]``, plus the properties the sandbox promises to serve."""
    schema: Schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": DEFS}
    if required:
        schema["allOf"] = [_ref(name), {"required": list(required)}]
    else:
        schema["$ref"] = f"#/$defs/{name}"
    return schema
