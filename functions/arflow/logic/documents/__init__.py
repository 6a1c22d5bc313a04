"""Documents in: canonical JSON, Peppol UBL and Stripe events, all turned into InvoiceDocument."""

from arflow.logic.documents.canonical import parse_canonical
from arflow.logic.documents.errors import (
    DocumentError,
    FieldProblem,
    InvalidDocumentError,
    MalformedDocumentError,
    UnsupportedDocumentError,
    WebhookAuthError,
)
from arflow.logic.documents.peppol import parse_ubl
from arflow.logic.documents.stripe import (
    StripeEvent,
    parse_stripe_event,
    sign_stripe_payload,
    verify_stripe_signature,
    wrap_stripe_object,
)
from arflow.models.invoice import InvoiceDocument

__all__ = [
    "DocumentError",
    "FieldProblem",
    "InvalidDocumentError",
    "MalformedDocumentError",
    "StripeEvent",
    "UnsupportedDocumentError",
    "WebhookAuthError",
    "parse_canonical",
    "parse_document",
    "parse_stripe_event",
    "parse_ubl",
    "sign_stripe_payload",
    "verify_stripe_signature",
    "wrap_stripe_object",
]

_JSON_TYPES = frozenset({"application/json", "text/json"})
_XML_TYPES = frozenset({"application/xml", "text/xml"})
# Types that say nothing about the body: the body itself decides.
_UNSPECIFIC_TYPES = frozenset({"", "application/octet-stream", "text/plain"})


def parse_document(raw: bytes, content_type: str | None) -> InvoiceDocument:
    """An invoice or credit note posted to `POST /invoices`, as canonical JSON or as UBL XML."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()

    if media_type in _JSON_TYPES or media_type.endswith("+json"):
        return parse_canonical(raw)
    if (
        media_type in _XML_TYPES
        or media_type.endswith("+xml")
        or media_type.startswith("application/vnd.peppol")
    ):
        return parse_ubl(raw)
    if media_type not in _UNSPECIFIC_TYPES:
        raise MalformedDocumentError(
            f"content type {media_type} is not accepted: send application/json (canonical "
            "invoice) or application/xml (Peppol UBL)"
        )

    first = raw.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
    if first == b"{":
        return parse_canonical(raw)
    if first == b"<":
        return parse_ubl(raw)
    raise MalformedDocumentError("the body is neither a JSON object nor an XML document")
