"""The Step Functions side: start an invoice's lifecycle, answer its parked task token."""

import json
from typing import Any

from botocore.exceptions import ClientError

from arflow.dal.aws import client

# The execution moved on (a timeout fired first) or ended: nothing is waiting for this answer.
_GONE = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


class Lifecycles:
    def __init__(self, state_machine_arn: str, region: str) -> None:
        self._arn = state_machine_arn
        self._sfn = client("stepfunctions", region)

    def start(self, invoice_id: str, execution_input: dict[str, Any]) -> str:
        """One execution per invoice, named after it: starting it again is a no-op."""
        try:
            response = self._sfn.start_execution(
                stateMachineArn=self._arn, name=invoice_id, input=json.dumps(execution_input)
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            return f"{self._arn.replace(':stateMachine:', ':execution:')}:{invoice_id}"
        return str(response["executionArn"])


def answer_token(region: str, task_token: str, output: dict[str, Any]) -> bool:
    """Wake the execution parked on this token; False when nothing waits for it any more."""
    try:
        client("stepfunctions", region).send_task_success(
            taskToken=task_token, output=json.dumps(output)
        )
    except ClientError as error:
        if error.response["Error"]["Code"] in _GONE:
            return False
        raise
    return True
