"""InvoiceIngestFunction: the invoice-created webhooks (canonical JSON, UBL XML, Stripe)."""

import hashlib
import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from arflow.handlers.support import answer_errors, json_response, raw_body
from arflow.logic import webhook_auth
from arflow.logic.documents import parse_document
from arflow.logic.documents.stripe import (
    SIGNATURE_HEADER,
    parse_stripe_event,
    verify_stripe_signature,
)
from arflow.logic.intake import IntakeResult, receive_document
from arflow.logic.settlement import receive_payment
from arflow.services import services
from arflow.timekeeping import utcnow

logger = Logger(service="arflow")
PAYMENT_STATUS = {"applied": 201, "duplicate": 200, "held": 202}
app = APIGatewayHttpResolver()


def _answer(result: IntakeResult) -> Response[str]:
    return json_response(202 if result.status == "accepted" else 200, result.body())


@app.post("/invoices")
def post_invoice() -> Response[str]:
    raw = raw_body(app)
    deps = services()
    now = utcnow()
    webhook_auth.verify(
        raw,
        dict(app.current_event.headers),
        deps.secret(deps.settings.webhook_secret_arn),
        int(now.timestamp()),
    )
    document = parse_document(raw, app.current_event.headers.get("content-type"))
    # A UBL document is the legal invoice itself: any difference in it is different content.
    digest = hashlib.sha256(raw).hexdigest() if document.source.value == "peppol" else None
    return _answer(receive_document(deps, document, now, digest))


@app.post("/webhooks/stripe")
def post_stripe_event() -> Response[str]:
    raw = raw_body(app)
    deps = services()
    now = utcnow()
    verify_stripe_signature(
        raw,
        app.current_event.headers.get(SIGNATURE_HEADER.lower()),
        deps.secret(deps.settings.stripe_secret_arn),
        int(now.timestamp()),
    )
    event = parse_stripe_event(raw)
    if event.payment is not None:
        result = receive_payment(deps, event.payment, now)
        return json_response(PAYMENT_STATUS[result.status], result.body())
    if event.document is None:
        # Stripe retries anything but 2xx: an event we do not act on is acknowledged, with why.
        logger.info("Stripe event ignored", stripe_event=event.event_id, type=event.event_type)
        return json_response(
            200, {"status": "ignored", "event": event.event_id, "reason": event.unhandled_reason}
        )
    return _answer(receive_document(deps, event.document, now, stripe_object_digest(raw)))


def stripe_object_digest(raw: bytes) -> str:
    """What Stripe says the object is, whatever event or retry carried it."""
    carried = json.loads(raw)["data"]["object"]
    return hashlib.sha256(json.dumps(carried, sort_keys=True).encode()).hexdigest()


answer_errors(app)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
