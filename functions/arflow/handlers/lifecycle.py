"""LifecycleFunction: plan the next stage, park the task token, record the end."""

from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from arflow.handlers.support import StepInput
from arflow.logic import lifecycle
from arflow.models.records import Outcome
from arflow.services import services
from arflow.timekeeping import utcnow

logger = Logger(service="arflow")


class LifecycleInput(StepInput):
    action: Literal["plan", "park", "end", "fail"]
    task_token: str | None = None
    outcome: Outcome | None = None
    error: str | None = None
    cause: str | None = None


@logger.inject_lambda_context(correlation_id_path="execution")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = LifecycleInput.model_validate(event)
    logger.append_keys(invoice_id=step.invoice_id)
    deps = services()
    if step.action == "plan":
        return lifecycle.plan(deps, step.invoice_id, utcnow())
    if step.action == "park":
        if not step.task_token:
            raise ValueError("park needs the task token")
        return lifecycle.park(deps, step.invoice_id, step.task_token)
    if step.action == "end":
        return lifecycle.end(deps, step.invoice_id, step.outcome or Outcome.ESCALATED, utcnow())
    return lifecycle.fail(deps, step.invoice_id, step.error or "", step.cause or "", utcnow())
