"""HoldStatusFunction: GET /customers/{customer_id}/hold, for order systems."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from arflow.errors import UnknownCustomerError
from arflow.handlers.support import answer_errors, json_response
from arflow.services import services

logger = Logger(service="arflow")
app = APIGatewayHttpResolver()


@app.get("/customers/<customer_id>/hold")
def hold_of(customer_id: str) -> Response[str]:
    customer = services().customers.get(customer_id)
    if customer is None:
        raise UnknownCustomerError(f"no customer {customer_id}")
    reasons = [
        {"reason": h.reason, "invoice_id": h.invoice_id, "placed_at": h.placed_at.isoformat()}
        for h in sorted(customer.holds.values(), key=lambda h: h.placed_at)
    ]
    return json_response(
        200, {"customer_id": customer_id, "on_hold": customer.on_hold, "reasons": reasons}
    )


answer_errors(app)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
