"""The canonical JSON invoice: exactly the shape of schemas/invoice.schema.json."""

import json
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from arflow.logic.documents.errors import (
    FieldProblem,
    InvalidDocumentError,
    MalformedDocumentError,
    UnsupportedDocumentError,
)
from arflow.models.invoice import InvoiceDocument


def parse_canonical(raw: bytes) -> InvoiceDocument:
    body = load_json(raw)

    if not isinstance(body, dict):
        raise InvalidDocumentError.of(
            [FieldProblem(field="document", message="must be a JSON object")]
        )
    stripe_object = body.get("object")
    if isinstance(stripe_object, str) and "invoice_number" not in body:
        raise UnsupportedDocumentError(
            f"this is a Stripe {stripe_object} object, not a canonical invoice: "
            "Stripe events go to the Stripe webhook"
        )

    try:
        return InvoiceDocument.model_validate(body)
    except ValidationError as error:
        raise InvalidDocumentError.from_validation(error) from None


def load_json(raw: bytes) -> Any:
    """JSON with numbers kept exact: floats become Decimal, NaN and Infinity are refused."""
    try:
        return json.loads(
            raw,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_refuse_duplicate_keys,
        )
    except RecursionError:
        raise MalformedDocumentError("the JSON is nested too deeply") from None
    except ValueError as error:
        hint = " (the body looks like XML)" if raw.lstrip().startswith(b"<") else ""
        raise MalformedDocumentError(f"the body is not valid JSON{hint}: {error}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins; an amount must not depend on that.
    body: dict[str, Any] = {}
    for key, value in pairs:
        if key in body:
            raise ValueError(f"the key {key!r} appears twice in one object")
        body[key] = value
    return body
