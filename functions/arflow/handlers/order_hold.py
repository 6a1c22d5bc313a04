"""OrderHoldFunction: hold the customer's new orders for an overdue invoice."""

from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from arflow.handlers.support import StepInput
from arflow.logic.lifecycle import hold_new_orders
from arflow.services import services
from arflow.timekeeping import utcnow

logger = Logger(service="arflow")


class OrderHoldInput(StepInput):
    action: Literal["place"]


@logger.inject_lambda_context(correlation_id_path="execution")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = OrderHoldInput.model_validate(event)
    logger.append_keys(invoice_id=step.invoice_id)
    return hold_new_orders(services(), step.invoice_id, utcnow())
