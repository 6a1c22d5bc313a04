"""EscalationFunction: the formal dunning letter, and escalation to finance with legal referral."""

from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from arflow.handlers.support import StepInput
from arflow.logic.dunning import escalate_to_finance, send_customer_notice
from arflow.models.policy import Stage
from arflow.services import services
from arflow.timekeeping import utcnow

logger = Logger(service="arflow")


class EscalationInput(StepInput):
    stage: Literal[Stage.FORMAL_NOTICE, Stage.ESCALATION]


@logger.inject_lambda_context(correlation_id_path="execution")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = EscalationInput.model_validate(event)
    logger.append_keys(invoice_id=step.invoice_id, stage=step.stage.value)
    if step.stage is Stage.FORMAL_NOTICE:
        return send_customer_notice(services(), step.invoice_id, step.stage, utcnow())
    return escalate_to_finance(services(), step.invoice_id, utcnow())
