"""CreditReviewFunction: the scheduled review of every credit limit that is due."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from arflow.logic.credit import review_due_customers
from arflow.services import services
from arflow.timekeeping import utcnow

logger = Logger(service="arflow")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    reviewed = review_due_customers(services(), utcnow())
    logger.info("Credit reviews run", reviewed=len(reviewed))
    return {"reviewed": reviewed}
