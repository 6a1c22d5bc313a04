"""A local run: moto, the stack from template.yaml, and one virtual clock for everything in it.

The calling thread is the driver: it posts documents and payments to the HTTP API as senders would,
at virtual times, while each invoice's execution runs in its own thread.
"""

import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from moto import mock_aws

from arflow import timekeeping
from arflow.dal.aws import forget_clients
from arflow.logic.documents.stripe import SIGNATURE_HEADER, sign_stripe_payload
from arflow.logic.webhook_auth import sign as sign_request
from arflow_local import motolink
from arflow_local.clock import VirtualClock
from arflow_local.stack import ACCOUNT_ID, HttpAnswer, LocalStack

LOCAL_PARAMETERS = {
    "SenderEmail": "credit-control@supplier.example",
    "FinanceEmail": "finance@supplier.example",
    "LogLevel": "WARNING",
}


class Simulation:
    def __init__(self, stack: LocalStack, clock: VirtualClock) -> None:
        self.stack = stack
        self.clock = clock

    # Sending, as the outside world does.

    def post_document(self, body: bytes, content_type: str) -> HttpAnswer:
        return self._signed("/invoices", body, content_type)

    def post_payment(self, payment: dict[str, Any]) -> HttpAnswer:
        return self._signed("/payments", json.dumps(payment).encode(), "application/json")

    def post_action(self, method: str, path: str, body: dict[str, Any]) -> HttpAnswer:
        """A credit controller's action (dispute, promise, pause, write-off), signed."""
        raw = json.dumps(body).encode() if body else b""
        timestamp = int(self.clock.now().timestamp())
        headers = sign_request(raw, self.stack.secret("WebhookSecret"), timestamp)
        headers["content-type"] = "application/json"
        return self.stack.request(method, path, headers, raw)

    def post_stripe_event(self, body: bytes) -> HttpAnswer:
        timestamp = int(self.clock.now().timestamp())
        secret = self.stack.secret("StripeWebhookSecret")
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign_stripe_payload(body, secret, timestamp),
        }
        return self.stack.request("POST", "/webhooks/stripe", headers, body)

    def _signed(self, path: str, body: bytes, content_type: str) -> HttpAnswer:
        timestamp = int(self.clock.now().timestamp())
        headers = sign_request(body, self.stack.secret("WebhookSecret"), timestamp)
        headers["content-type"] = content_type
        return self.stack.request("POST", path, headers, body)

    def hold_status(self, customer_id: str) -> HttpAnswer:
        return self.stack.request("GET", f"/customers/{customer_id}/hold", {}, b"")

    def run_schedules(self) -> list[dict[str, Any]]:
        """Run every scheduled function once, as its schedule would at this instant."""
        answers = []
        for schedule in self.stack.schedules:
            event = {
                "version": "0",
                "source": "aws.scheduler",
                "detail-type": "Scheduled Event",
                "time": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "detail": {},
            }
            _, failed = self.stack.invoke(schedule.function.arn, json.dumps(event).encode())
            answers.append({"function": schedule.function.logical_id, "failed": failed})
        return answers

    def load_credit_reports(self, path: Path) -> int:
        """Credit reports for the table-backed provider (the local default)."""
        from arflow.dal.credit_reports import load_reports

        table = self.stack.ref("CreditReportsTable")
        return load_reports(path, table, self.stack.client("dynamodb"))

    # Time.

    def advance_to(self, instant: datetime) -> None:
        self.clock.sleep_until(instant)

    def run_until_idle(self) -> None:
        """Let every lifecycle run to its end."""
        motolink.wait_for_all_executions()

    # What happened.

    def timeline(self) -> list[dict[str, Any]]:
        from arflow.dal.store import History

        history = History(self.stack.ref("EventsTable"), self.stack.region)
        return [
            {
                "invoice_id": e.invoice_id,
                "at": e.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "event": e.event.value,
                "detail": e.detail,
            }
            for e in history.scan()
        ]

    def emails(self) -> list[EmailMessage]:
        parser = BytesParser(policy=email_policy.default)
        return [
            parser.parsebytes(m.raw_data.encode())
            for m in motolink.sent_emails(ACCOUNT_ID, self.stack.region)
        ]

    def finance_notices(self) -> list[dict[str, Any]]:
        topic = self.stack.ref("FinanceTopic")
        return [
            {"subject": n[2], "message": n[1], "attributes": n[3] if len(n) > 3 else {}}
            for n in motolink.published_notifications(ACCOUNT_ID, self.stack.region, topic)
        ]

    def execution_status(self, execution_arn: str) -> dict[str, Any]:
        return dict(
            self.stack.client("stepfunctions").describe_execution(executionArn=execution_arn)
        )


@contextmanager
def simulation(
    start: datetime,
    policy_text: str = "{}",
    parameters: dict[str, str] | None = None,
    template_path: Path | None = None,
) -> Iterator[Simulation]:
    """Boot everything, make the calling thread the driver, and tear it all down after."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    clock = VirtualClock(start)
    with ExitStack() as stack_of_contexts:
        stack_of_contexts.enter_context(mock_aws(config=motolink.MOTO_CONFIG))
        forget_clients()
        stack = (
            LocalStack(template_path, {**LOCAL_PARAMETERS, **(parameters or {})})
            if template_path
            else LocalStack(parameters={**LOCAL_PARAMETERS, **(parameters or {})})
        )
        router = motolink.LambdaRouter(stack.invoke)
        stack_of_contexts.enter_context(motolink.linked(clock, router))
        timekeeping.use_clock(clock.now)
        stack_of_contexts.callback(timekeeping.use_clock, None)
        stack.boot(policy_text)
        clock.actor_started()
        try:
            yield Simulation(stack, clock)
        finally:
            _drain(clock)


def _drain(clock: VirtualClock) -> None:
    """Let executions still running finish (bounded) before moto goes away under them."""
    deadline = time.monotonic() + 30
    if motolink.live_executions():
        motolink.wait_for_all_executions()
    clock.actor_finished()
    while motolink.live_executions() and time.monotonic() < deadline:
        time.sleep(0.01)
