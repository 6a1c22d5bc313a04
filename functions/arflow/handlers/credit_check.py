"""CreditCheckFunction: assess the buyer when its invoice arrives."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from arflow.handlers.support import StepInput
from arflow.logic.credit import check_credit
from arflow.services import services
from arflow.timekeeping import utcnow

logger = Logger(service="arflow")


@logger.inject_lambda_context(correlation_id_path="execution")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = StepInput.model_validate(event)
    logger.append_keys(invoice_id=step.invoice_id)
    return check_credit(services(), step.invoice_id, utcnow())
