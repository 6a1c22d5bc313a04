"""InsuranceClaimFunction: notify the insurer of the overdue; build and submit the claim."""

from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from arflow.handlers.support import StepInput
from arflow.logic.insurance import notify_insurer, submit_claim
from arflow.services import services
from arflow.timekeeping import utcnow

logger = Logger(service="arflow")


class InsuranceInput(StepInput):
    action: Literal["notify", "claim"]


@logger.inject_lambda_context(correlation_id_path="execution")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = InsuranceInput.model_validate(event)
    logger.append_keys(invoice_id=step.invoice_id)
    if step.action == "notify":
        return notify_insurer(services(), step.invoice_id, utcnow())
    return submit_claim(services(), step.invoice_id, utcnow())
