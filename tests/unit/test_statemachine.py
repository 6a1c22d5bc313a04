"""The lifecycle's ASL: real error names, no day counts, no resource names."""

import inspect
import json
import re
from pathlib import Path

import pytest

import arflow.dal.insurer
import arflow.errors
from arflow.errors import LAMBDA_SERVICE_ERRORS, STATES_ERRORS

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachines" / "invoice_lifecycle.asl.json").read_text())


def _walk(node, key):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)


def _product_errors() -> set[str]:
    modules = [arflow.errors, arflow.dal.insurer]
    return {
        name
        for module in modules
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, Exception)
    }


def test_every_error_name_is_a_real_error():
    # Given every name the ASL retries or catches
    names = {name for equals in _walk(ASL, "ErrorEquals") for name in equals}

    # Then each is a Step Functions error, a Lambda service error or one of the product's classes
    known = STATES_ERRORS | LAMBDA_SERVICE_ERRORS | _product_errors()
    assert names <= known, f"unknown error names: {sorted(names - known)}"
    assert "TransientServiceError" in names


def test_no_day_counts_or_resource_names_in_the_definition():
    # Given the definition as text
    text = json.dumps(ASL)

    # Then no Wait state holds a fixed duration and no ARN or table name is written in
    assert not list(_walk(ASL, "Seconds")), "a fixed wait duration belongs in the policy"
    assert not list(_walk(ASL, "Timestamp")), "a fixed timestamp belongs in the policy"
    assert "arn:aws:lambda" not in text and "arn:aws:sns" not in text
    assert not re.search(r"\b(Table|Bucket)\b", text)
    substitutions = set(re.findall(r"\$\{(\w+)\}", text))
    assert substitutions == {
        "CreditCheckFunctionArn",
        "LifecycleFunctionArn",
        "ReminderFunctionArn",
        "EscalationFunctionArn",
        "OrderHoldFunctionArn",
        "InsuranceClaimFunctionArn",
        "FinanceTopicArn",
    }


def test_every_task_retries_transient_errors_and_ends_in_a_finance_alert():
    # Given every Task state
    tasks = {n: s for n, s in ASL["States"].items() if s["Type"] == "Task"}
    last_resort = {"Alert finance to the failed step", "Record the failed lifecycle"}

    for name, state in tasks.items():
        if name in last_resort:
            continue
        # Then it retries with back-off and catches everything else into the finance alert
        assert any("TransientServiceError" in r["ErrorEquals"] for r in state["Retry"]), name
        assert all(r.get("BackoffRate", 1) > 1 for r in state["Retry"]), name
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        assert state["Catch"][-1]["Next"] == "Alert finance to the failed step", name

    # And the failure path ends in a named error
    assert ASL["States"]["Lifecycle failed"] == {
        "Type": "Fail",
        "Error": "InvoiceLifecycleFailed",
        "Cause": "A lifecycle step failed; finance has been alerted.",
    }


@pytest.mark.parametrize("state", sorted(ASL["States"]))
def test_state_names_are_sentences(state):
    # Then each state name reads as a short sentence starting with a capital
    assert state[0].isupper() and " " in state
