"""The local stack's coupling to moto's internals: fails loudly when a moto upgrade breaks it."""

import json
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from arflow_local import motolink
from arflow_local.clock import VirtualClock

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 1, tzinfo=UTC)
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:probe"


def test_moto_is_the_pinned_version():
    # Given the version the coupling was written against
    pinned = next(
        line.split("==")[1].strip()
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line.lower().startswith("moto==")
    )

    # Then that is the version installed
    assert version("moto") == pinned


@pytest.mark.parametrize(("owner", "name"), motolink.PATCHED)
def test_every_patched_name_still_exists(owner, name):
    # Given a name the local stack replaces in moto's interpreter
    # Then moto still defines it where the local stack expects it
    assert name in vars(owner), f"{owner.__name__}.{name} is gone: motolink needs updating"


def _machine(definition: dict) -> tuple[object, str]:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    arn = sfn.create_state_machine(
        name="probe",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/probe",
    )["stateMachineArn"]
    return sfn, arn


def _task(next_state: str | None, pattern: str = "") -> dict:
    payload = (
        {"token.$": "$$.Task.Token", "execution.$": "$$.Execution.Name"}
        if pattern
        else {"token": None}
    )
    state = {
        "Type": "Task",
        "Resource": f"arn:aws:states:::lambda:invoke{pattern}",
        "Parameters": {"FunctionName": FUNCTION, "Payload": payload},
        "ResultPath": "$.result",
    }
    return state | ({"Next": next_state} if next_state else {"End": True})


def test_waits_cost_virtual_time_only_and_tokens_wake_executions():
    # Given a machine that waits 30 days on a task token, then for a timestamp, then calls a task
    calls: list[tuple[datetime, dict]] = []
    tokens: dict[str, str] = {}
    clock = VirtualClock(START)

    def invoke(name: str, payload: bytes) -> tuple[bytes, bool]:
        event = json.loads(payload)
        calls.append((clock.now(), event))
        if event["token"]:
            tokens[event["execution"]] = event["token"]
        return b"{}", False

    park = _task("Paid", ".waitForTaskToken") | {
        "TimeoutSeconds": 30 * 86400,
        "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": "Wait"}],
    }
    definition = {
        "StartAt": "Park",
        "States": {
            "Park": park,
            "Wait": {"Type": "Wait", "Timestamp": "2026-03-01T09:00:00Z", "Next": "Call"},
            "Call": _task(None),
            "Paid": {"Type": "Succeed"},
        },
    }

    with mock_aws(config=motolink.MOTO_CONFIG):
        sfn, arn = _machine(definition)
        with motolink.linked(clock, motolink.LambdaRouter(invoke)):
            clock.actor_started()
            try:
                # When one execution is answered on day 4 and the other is left to time out
                paid = sfn.start_execution(stateMachineArn=arn, name="paid", input="{}")
                unpaid = sfn.start_execution(stateMachineArn=arn, name="unpaid", input="{}")
                clock.sleep_until(START + timedelta(days=4))
                sfn.send_task_success(taskToken=tokens["paid"], output='{"outcome": "PAID"}')
                motolink.wait_for_all_executions()
            finally:
                clock.actor_finished()

        # Then the answered one succeeded on day 4 with the payment's output
        described = sfn.describe_execution(executionArn=paid["executionArn"])
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["output"])["result"] == {"outcome": "PAID"}
        # And the other timed out after 30 virtual days, waited for the timestamp, then ran its task
        assert [at for at, _ in calls] == [START, START, datetime(2026, 3, 1, 9, tzinfo=UTC)]
        history = sfn.get_execution_history(executionArn=unpaid["executionArn"])["events"]
        assert history[-1]["type"] == "ExecutionSucceeded"
        assert history[-1]["timestamp"] == datetime(2026, 3, 1, 9, tzinfo=UTC)
        # And none of it took wall time worth mentioning: the clock is virtual
        assert clock.now() == datetime(2026, 3, 1, 9, tzinfo=UTC)


def test_lambda_errors_reach_the_state_machine_by_their_type_and_retries_back_off_virtually():
    # Given a task that fails twice with a transient error before it succeeds
    attempts: list[datetime] = []
    clock = VirtualClock(START)

    def invoke(name: str, payload: bytes) -> tuple[bytes, bool]:
        attempts.append(clock.now())
        if len(attempts) < 3:
            return json.dumps(
                {"errorType": "TransientServiceError", "errorMessage": "x"}
            ).encode(), True
        return b'{"ok": true}', False

    task = _task(None) | {
        "Retry": [
            {"ErrorEquals": ["TransientServiceError"], "IntervalSeconds": 60, "BackoffRate": 2}
        ]
    }
    with mock_aws(config=motolink.MOTO_CONFIG):
        sfn, arn = _machine({"StartAt": "Call", "States": {"Call": task}})
        with motolink.linked(clock, motolink.LambdaRouter(invoke)):
            clock.actor_started()
            try:
                # When it runs
                execution = sfn.start_execution(stateMachineArn=arn, name="retry", input="{}")
                motolink.wait_for_all_executions()
            finally:
                clock.actor_finished()

        # Then the retries came 60 s and then 120 s later, on the virtual clock
        assert attempts == [START, START + timedelta(seconds=60), START + timedelta(seconds=180)]
        status = sfn.describe_execution(executionArn=execution["executionArn"])["status"]
        assert status == "SUCCEEDED"


def test_everything_patched_is_restored_after_a_run():
    # Given the interpreter's own functions before a run
    before = {key: vars(key[0])[key[1]] for key in motolink.PATCHED}

    # When a run links and unlinks
    with motolink.linked(VirtualClock(START), motolink.LambdaRouter(lambda n, p: (b"{}", False))):
        during = {key: vars(key[0])[key[1]] for key in motolink.PATCHED}

    # Then every name was replaced during it and is moto's own again after it
    assert all(during[key] is not before[key] for key in before)
    assert {key: vars(key[0])[key[1]] for key in motolink.PATCHED} == before
