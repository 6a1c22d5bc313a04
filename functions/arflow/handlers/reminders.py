"""ReminderFunction: the reminder before the due date and the friendly overdue reminder."""

from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from arflow.handlers.support import StepInput
from arflow.logic.dunning import send_customer_notice
from arflow.models.policy import Stage
from arflow.services import services
from arflow.timekeeping import utcnow

logger = Logger(service="arflow")


class ReminderInput(StepInput):
    stage: Literal[Stage.REMINDER, Stage.OVERDUE_NOTICE]


@logger.inject_lambda_context(correlation_id_path="execution")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = ReminderInput.model_validate(event)
    logger.append_keys(invoice_id=step.invoice_id, stage=step.stage.value)
    return send_customer_notice(services(), step.invoice_id, step.stage, utcnow())
