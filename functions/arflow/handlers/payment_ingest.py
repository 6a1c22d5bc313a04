"""PaymentIngestFunction: the payment webhook records money received."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from arflow.handlers.invoice_ingest import PAYMENT_STATUS
from arflow.handlers.support import answer_errors, json_response, raw_body
from arflow.logic import webhook_auth
from arflow.logic.documents.canonical import load_json
from arflow.logic.documents.errors import InvalidDocumentError
from arflow.logic.settlement import receive_payment
from arflow.models.invoice import Payment
from arflow.services import services
from arflow.timekeeping import utcnow

logger = Logger(service="arflow")
app = APIGatewayHttpResolver()


@app.post("/payments")
def post_payment() -> Response[str]:
    raw = raw_body(app)
    deps = services()
    now = utcnow()
    webhook_auth.verify(
        raw,
        dict(app.current_event.headers),
        deps.secret(deps.settings.webhook_secret_arn),
        int(now.timestamp()),
    )
    try:
        payment = Payment.model_validate(load_json(raw))
    except ValidationError as error:
        raise InvalidDocumentError.from_validation(error) from error
    result = receive_payment(deps, payment, now)
    return json_response(PAYMENT_STATUS[result.status], result.body())


answer_errors(app)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
