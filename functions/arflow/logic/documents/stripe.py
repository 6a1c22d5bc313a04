"""Stripe webhooks: the signature Stripe puts on them, and the events that carry documents.

`invoice.finalized` and `credit_note.created` become canonical documents; any other event is
reported as not handled, with the reason, so that the caller can acknowledge it and move on.
"""

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeGuard

from pydantic import BaseModel, ConfigDict, ValidationError

from arflow.logic.documents.canonical import load_json
from arflow.logic.documents.errors import (
    FieldProblem,
    InvalidDocumentError,
    UnsupportedDocumentError,
    WebhookAuthError,
)
from arflow.models.invoice import (
    DocumentSource,
    DocumentType,
    InvoiceDocument,
    Payment,
    document_id,
)
from arflow.models.money import from_minor_units, is_known_currency

SIGNATURE_HEADER = "Stripe-Signature"

# What Stripe sends when the object is created or reaches the state a simulation starts from.
EVENT_FOR_OBJECT = {
    "invoice": "invoice.finalized",
    "credit_note": "credit_note.created",
    "invoice_payment": "invoice_payment.paid",
    "charge": "charge.succeeded",
    "payment_intent": "payment_intent.succeeded",
    "customer": "customer.created",
}


class StripeEvent(BaseModel):
    """A Stripe event, and the document it carries when it is one arflow acts on."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    event_type: str
    created: int
    account: str | None = None
    livemode: bool = False
    object_type: str | None = None
    object_id: str | None = None
    document: InvoiceDocument | None = None
    payment: Payment | None = None
    unhandled_reason: str | None = None

    @property
    def handled(self) -> bool:
        return self.document is not None or self.payment is not None


def sign_stripe_payload(raw: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header value Stripe would send for this body."""
    return f"t={timestamp},v1={_stripe_digest(raw, secret, timestamp)}"


def verify_stripe_signature(
    raw: bytes, header: str | None, secret: str, now: int, tolerance: int = 300
) -> None:
    """Stripe's scheme: HMAC-SHA256 of "<t>.<body>"; any one v1 value may match."""
    if not secret:
        raise ValueError("no Stripe endpoint secret is configured")
    if not header or not header.strip():
        raise WebhookAuthError(f"the {SIGNATURE_HEADER} header is missing")

    timestamp, signatures = _read_signature_header(header)
    expected = _stripe_digest(raw, secret, timestamp).encode()
    # Every candidate is compared, so the time taken does not say which one came close.
    matches = [hmac.compare_digest(expected, signature.encode()) for signature in signatures]
    if not any(matches):
        raise WebhookAuthError(f"no v1 signature in the {SIGNATURE_HEADER} header matches")
    if abs(now - timestamp) > tolerance:
        raise WebhookAuthError(
            f"the {SIGNATURE_HEADER} timestamp is more than {tolerance} seconds from now"
        )


def wrap_stripe_object(
    obj: dict[str, Any], created: int, account: str | None = None
) -> dict[str, Any]:
    """The event envelope Stripe would deliver for a bare API object; an event is left as it is."""
    object_type = obj.get("object")
    if object_type == "event":
        return obj
    event_type = EVENT_FOR_OBJECT.get(str(object_type))
    if event_type is None:
        raise UnsupportedDocumentError(f"no Stripe event is known for a {object_type} object")

    seed = json.dumps([event_type, obj.get("id"), created, account]).encode()
    event: dict[str, Any] = {
        "id": "evt_" + hashlib.sha256(seed).hexdigest()[:24],
        "object": "event",
        "api_version": None,
        "created": created,
        "data": {"object": obj},
        "livemode": bool(obj.get("livemode", False)),
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    if account is not None:
        event["account"] = account
    return event


def parse_stripe_event(raw: bytes) -> StripeEvent:
    body = load_json(raw)

    if not isinstance(body, dict):
        raise UnsupportedDocumentError("a Stripe webhook body is a JSON event object")
    if body.get("object") != "event":
        kind = body.get("object")
        what = f"a bare Stripe {kind} object" if isinstance(kind, str) else "not a Stripe object"
        raise UnsupportedDocumentError(
            f"this is {what}, not an event: Stripe webhooks deliver events, with the object "
            "under data.object"
        )
    event = _envelope(body)
    if event.event_type in _PAYMENT_EVENTS:
        return _payment_event(event, body["data"]["object"])

    reader = _READERS.get(event.event_type)
    if reader is None:
        handled = " and ".join(sorted(_READERS))
        reason = f"{event.event_type} events are not handled; arflow takes {handled}"
        return event.model_copy(update={"unhandled_reason": reason})
    expected = event.event_type.split(".")[0]
    if event.object_type != expected:
        problem = FieldProblem(
            field="data.object.object",
            message=f"{event.event_type} carries {expected} objects, not {event.object_type}",
        )
        raise InvalidDocumentError.of([problem])

    obj = body["data"]["object"]
    values = reader(obj, event.account)
    if values is None:
        reason = f"{event.object_id} has nothing to collect"
        return event.model_copy(update={"unhandled_reason": reason})
    try:
        document = InvoiceDocument.model_validate(_without_none(values))
    except ValidationError as error:
        raise InvalidDocumentError.from_validation(error, _sender_path(obj)) from None
    return event.model_copy(update={"document": document})


# Both invoice events report the same payment of the whole invoice: one payment id for both.
_PAYMENT_EVENTS = frozenset({"invoice.paid", "invoice.payment_succeeded", "invoice_payment.paid"})


def _payment_event(event: StripeEvent, obj: dict[str, Any]) -> StripeEvent:
    """Money Stripe collected, as a payment against the invoice it names."""
    # NOTE: a Stripe account that sends both invoice.paid and invoice_payment.paid for the same
    # money would have it counted twice; subscribe the endpoint to one of the two.
    problems: list[FieldProblem] = []
    if event.event_type.startswith("invoice_payment"):
        invoice_ref, amount_key, payment_ref = (
            _id_of(obj.get("invoice")),
            "amount_paid",
            obj.get("id"),
        )
    else:
        invoice_ref, amount_key = obj.get("id"), "amount_paid"
        payment_ref = _id_of(obj.get("payment_intent")) or f"{obj.get('id')}:paid"
    currency = str(obj.get("currency") or "").upper()
    amount = obj.get(amount_key)
    if not isinstance(invoice_ref, str) or not invoice_ref.startswith("in_"):
        problems.append(
            FieldProblem(field="data.object.invoice", message="is not a Stripe invoice id")
        )
    if not isinstance(amount, int) or amount <= 0:
        problems.append(
            FieldProblem(
                field=f"data.object.{amount_key}", message="must be a positive integer amount"
            )
        )
    if not is_known_currency(currency):
        problems.append(
            FieldProblem(field="data.object.currency", message="is not a known currency")
        )
    if problems:
        raise InvalidDocumentError.of(problems)
    supplier_id = _supplier(obj, event.account)["id"]
    payment = Payment(
        payment_id=f"stripe:{payment_ref}",
        invoice_id=document_id(supplier_id, str(invoice_ref)),
        amount=from_minor_units(int(str(amount)), currency),
        currency=currency,
        method="card",
    )
    return event.model_copy(update={"payment": payment})


def _stripe_digest(raw: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()


def _read_signature_header(header: str) -> tuple[int, list[str]]:
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamps.append(value.strip())
        elif key == "v1":
            signatures.append(value.strip())

    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()):
        raise WebhookAuthError(f"the {SIGNATURE_HEADER} header has no valid timestamp (t=)")
    if not signatures:
        raise WebhookAuthError(f"the {SIGNATURE_HEADER} header has no v1 signature")
    return int(timestamps[0]), signatures


def _envelope(body: dict[str, Any]) -> StripeEvent:
    data = body.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    problems = [
        FieldProblem(field=name, message=message)
        for name, message, present in (
            ("id", "is required", isinstance(body.get("id"), str)),
            ("type", "is required", isinstance(body.get("type"), str)),
            ("created", "must be Unix seconds", _is_int(body.get("created"))),
            ("data.object", "must be a Stripe object", isinstance(obj, dict)),
        )
        if not present
    ]
    if problems or not isinstance(obj, dict):
        raise InvalidDocumentError.of(problems)

    return StripeEvent(
        event_id=body["id"],
        event_type=body["type"],
        created=body["created"],
        account=_str_or_none(body.get("account")),
        livemode=body.get("livemode") is True,
        object_type=_str_or_none(obj.get("object")),
        object_id=_str_or_none(obj.get("id")),
    )


def _read_invoice(obj: dict[str, Any], account: str | None) -> dict[str, Any] | None:
    currency = _currency(obj)
    remaining = "amount_remaining" if "amount_remaining" in obj else "amount_due"
    total = _minor(obj, remaining, currency)
    if total == 0:
        return None

    address = obj.get("customer_address")
    charged = obj.get("collection_method") == "charge_automatically"
    days = obj.get("days_until_due")
    terms = "Charged automatically by Stripe" if charged else None
    if terms is None and _is_int(days):
        terms = f"Payment within {days} days"
    payment_url = obj.get("hosted_invoice_url")
    customer = _customer_id(obj)
    return {
        "document_type": DocumentType.INVOICE,
        "source": DocumentSource.STRIPE,
        "invoice_number": obj.get("number") or obj.get("id"),
        "source_id": obj.get("id"),
        "supplier": _supplier(obj, account),
        "customer": {
            "id": customer,
            "name": obj.get("customer_name") or customer,
            "email": obj.get("customer_email") or None,
            "country": address.get("country") if isinstance(address, dict) else None,
        },
        "issue_date": _unix_date(obj, "effective_at") or _unix_date(obj, "created"),
        "due_date": _unix_date(obj, "due_date"),
        "payment_terms": terms,
        "payment_terms_days": days if _is_int(days) else None,
        "currency": currency,
        "total_amount": total,
        "tax_amount": _tax(obj, currency),
        "payment_instructions": {"payment_url": payment_url} if payment_url else None,
        "lines": _lines(obj, currency),
    }


def _read_credit_note(obj: dict[str, Any], account: str | None) -> dict[str, Any] | None:
    currency = _currency(obj)
    customer = _customer_id(obj)
    return {
        "document_type": DocumentType.CREDIT_NOTE,
        "source": DocumentSource.STRIPE,
        "invoice_number": obj.get("number") or obj.get("id"),
        "source_id": obj.get("id"),
        "supplier": _supplier(obj, account),
        "customer": {"id": customer, "name": customer},
        "issue_date": _unix_date(obj, "effective_at") or _unix_date(obj, "created"),
        "currency": currency,
        "total_amount": _minor(obj, "total", currency),
        "tax_amount": _tax(obj, currency),
        "billing_reference": _id_of(obj.get("invoice")),
        "lines": _lines(obj, currency),
    }


_READERS: dict[str, Callable[[dict[str, Any], str | None], dict[str, Any] | None]] = {
    "invoice.finalized": _read_invoice,
    "credit_note.created": _read_credit_note,
}


def _supplier(obj: dict[str, Any], account: str | None) -> dict[str, Any]:
    # Without Connect an event names no account: the endpoint's own account is the supplier.
    supplier_id = f"stripe:{account or 'default'}"
    return {
        "id": supplier_id,
        "name": obj.get("account_name") or account or "Stripe account",
        "country": obj.get("account_country") or None,
    }


def _customer_id(obj: dict[str, Any]) -> str:
    customer = _id_of(obj.get("customer"))
    if customer is None:
        raise InvalidDocumentError.of(
            [FieldProblem(field="data.object.customer", message="is required")]
        )
    return customer


def _currency(obj: dict[str, Any]) -> str:
    code = obj.get("currency")
    currency = code.upper() if isinstance(code, str) else ""
    if not is_known_currency(currency):
        raise InvalidDocumentError.of(
            [FieldProblem(field="data.object.currency", message=f"unknown currency code {code!r}")]
        )
    return currency


def _minor(obj: dict[str, Any], key: str, currency: str, field: str | None = None) -> Decimal:
    value = obj.get(key)
    if not _is_int(value):
        problem = FieldProblem(
            field=f"data.object.{field or key}",
            message="must be a whole number of the currency's minor unit",
        )
        raise InvalidDocumentError.of([problem])
    return from_minor_units(value, currency)


def _tax(obj: dict[str, Any], currency: str) -> Decimal | None:
    # Older API versions give one `tax`; newer ones a list of taxes, each with its amount.
    if _is_int(obj.get("tax")):
        return from_minor_units(obj["tax"], currency)
    for key in ("total_taxes", "total_tax_amounts", "tax_amounts"):
        taxes = obj.get(key)
        if isinstance(taxes, list) and taxes:
            amounts = [tax.get("amount") for tax in taxes if isinstance(tax, dict)]
            whole = [amount for amount in amounts if _is_int(amount)]
            if len(whole) == len(taxes):
                return from_minor_units(sum(whole), currency)
    return None


def _lines(obj: dict[str, Any], currency: str) -> list[dict[str, Any]]:
    lines = obj.get("lines")
    data = lines.get("data") if isinstance(lines, dict) else None
    if not isinstance(data, list):
        return []

    result = []
    for index, line in enumerate(data):
        if not isinstance(line, dict):
            continue
        quantity = line.get("quantity")
        result.append(
            {
                "description": line.get("description") or line.get("id") or "Stripe line item",
                "quantity": quantity if _is_int(quantity) else None,
                "amount": _minor(line, "amount", currency, f"lines.data.{index}.amount"),
            }
        )
    return result


def _unix_date(obj: dict[str, Any], key: str) -> date | None:
    value = obj.get(key)
    if value is None:
        return None
    if not _is_int(value):
        raise InvalidDocumentError.of(
            [FieldProblem(field=f"data.object.{key}", message="must be Unix seconds")]
        )
    return datetime.fromtimestamp(value, UTC).date()


def _sender_path(obj: dict[str, Any]) -> Callable[[str], str]:
    remaining = "amount_remaining" if "amount_remaining" in obj else "amount_due"
    names = {
        "invoice_number": "number",
        "supplier.name": "account_name",
        "supplier.country": "account_country",
        "customer": "customer",
        "customer.id": "customer",
        "customer.name": "customer_name",
        "customer.email": "customer_email",
        "customer.country": "customer_address.country",
        "issue_date": "effective_at",
        "due_date": "due_date",
        "payment_terms_days": "days_until_due",
        "total_amount": remaining if obj.get("object") == "invoice" else "total",
        "billing_reference": "invoice",
        "payment_instructions.payment_url": "hosted_invoice_url",
    }

    def rename(model_path: str) -> str:
        if model_path.startswith("lines."):
            index, _, leaf = model_path.removeprefix("lines.").partition(".")
            return f"data.object.lines.data.{index}" + (f".{leaf}" if leaf else "")
        return f"data.object.{names.get(model_path, model_path)}"

    return rename


def _id_of(value: Any) -> str | None:
    """An id, whether Stripe sent it as a string or as an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    """Absent attributes are left out, so that a required one is reported as missing."""
    return {
        name: _without_none(value) if isinstance(value, dict) else value
        for name, value in values.items()
        if value is not None
    }


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
