"""The insurer adapters: the local one on moto's DynamoDB, the HTTP one against a scripted server.

The HTTP server runs in this process on 127.0.0.1 with an ephemeral port; every wait is bounded
and back-off sleeps go to a recorder, so the file runs in a few seconds.
"""

import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

from arflow import timekeeping
from arflow.dal.insurer import (
    HttpInsurer,
    InsurerRejectedError,
    InsurerUnavailableError,
    LocalInsurer,
    idempotency_key,
    insurer_from_env,
)
from arflow.logic.claims import build_claim_pack, build_overdue_notification
from arflow.models.claim import (
    ClaimInvoice,
    ClaimSubmission,
    OverdueNotification,
    PaymentRecord,
)
from arflow.models.policy import Policy

CLAIMS_TABLE = "arflow-test-claims"
NOTIFIED_AT = datetime(2025, 4, 30, 9, 0, tzinfo=UTC)
CLAIMED_AT = datetime(2025, 5, 30, 9, 0, tzinfo=UTC)


def make_invoice(invoice_id: str = "inv_00000000000000000001") -> ClaimInvoice:
    return ClaimInvoice(
        invoice_id=invoice_id,
        invoice_number="F-2025-0042",
        supplier_id="sup-1",
        supplier_name="Nordkap Tools AB",
        customer_id="cus-7",
        customer_name="Harbour & Sons Ltd",
        customer_country="DE",
        currency="EUR",
        total_amount=Decimal("1200.00"),
        issue_date=date(2025, 3, 1),
        due_date=date(2025, 3, 31),
    )


def make_notification(invoice_id: str = "inv_00000000000000000001") -> OverdueNotification:
    return build_overdue_notification(
        make_invoice(invoice_id), Decimal("1200.00"), NOTIFIED_AT, Policy()
    )


def make_claim(invoice_id: str = "inv_00000000000000000001") -> ClaimSubmission:
    pack = build_claim_pack(
        make_invoice(invoice_id),
        notices=[],
        letters=[],
        payments=[
            PaymentRecord(payment_id="pay-1", amount=Decimal("200"), received_at=NOTIFIED_AT)
        ],
        timeline=[],
        policy=Policy(),
        prepared_at=CLAIMED_AT,
    )
    return pack.submission(f"claims/{invoice_id}/manifest.json")


@pytest.fixture
def frozen_clock() -> Iterator[list[datetime]]:
    """The product's clock, held at a time the test moves by hand."""
    now = [NOTIFIED_AT]
    timekeeping.use_clock(lambda: now[0])
    yield now
    timekeeping.use_clock(None)


# The local insurer.


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    resource = boto3.resource("dynamodb", region_name="us-east-1")
    resource.create_table(
        TableName=CLAIMS_TABLE,
        KeySchema=[{"AttributeName": "claim_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "claim_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return resource


def test_local_insurer_records_the_notification(dynamodb: Any, frozen_clock: Any) -> None:
    # Given the local insurer on an empty claims table
    insurer = LocalInsurer(dynamodb, CLAIMS_TABLE)
    notification = make_notification()

    # When the overdue is notified
    receipt = insurer.notify_overdue(notification)

    # Then the receipt has a local notification reference
    assert re.fullmatch(r"LOCAL-N-[0-9A-F]{8}", receipt.reference)
    assert receipt.kind == "notification"
    assert receipt.status == "received"
    assert receipt.submitted_at == NOTIFIED_AT

    # And the claims table holds the submission under that reference
    item = dynamodb.Table(CLAIMS_TABLE).get_item(Key={"claim_id": receipt.reference})["Item"]
    assert item["kind"] == "notification"
    assert item["invoice_id"] == notification.invoice_id
    assert item["customer_id"] == "cus-7"
    assert item["amount"] == Decimal("1200.00")
    assert item["currency"] == "EUR"
    assert item["status"] == "received"
    assert datetime.fromisoformat(item["submitted_at"]) == NOTIFIED_AT
    assert "pack_key" not in item
    assert OverdueNotification.model_validate_json(item["submission"]) == notification


def test_local_insurer_records_the_claim_with_its_pack(dynamodb: Any, frozen_clock: Any) -> None:
    # Given the local insurer that already holds the invoice's notification
    insurer = LocalInsurer(dynamodb, CLAIMS_TABLE)
    notified = insurer.notify_overdue(make_notification())

    # When the claim is submitted
    claim = make_claim()
    receipt = insurer.submit_claim(claim)

    # Then it is a second record, under a claim reference, with the amount claimed and the pack
    assert re.fullmatch(r"LOCAL-C-[0-9A-F]{8}", receipt.reference)
    assert receipt.reference != notified.reference
    item = dynamodb.Table(CLAIMS_TABLE).get_item(Key={"claim_id": receipt.reference})["Item"]
    assert item["kind"] == "claim"
    assert item["amount"] == Decimal("900.00")
    assert item["pack_key"] == "claims/inv_00000000000000000001/manifest.json"
    assert json.loads(item["submission"])["amount_claimed"] == "900.00"


def test_local_insurer_records_a_retried_submission_once(
    dynamodb: Any, frozen_clock: list[datetime]
) -> None:
    # Given a claim already submitted once
    insurer = LocalInsurer(dynamodb, CLAIMS_TABLE)
    first = insurer.submit_claim(make_claim())

    # When the same claim is submitted again, an hour later
    frozen_clock[0] = NOTIFIED_AT + timedelta(hours=1)
    again = insurer.submit_claim(make_claim())

    # Then the first receipt comes back and the table still holds one record
    assert again == first
    assert dynamodb.Table(CLAIMS_TABLE).scan()["Count"] == 1


def test_local_insurer_refuses_a_reference_held_by_another_invoice(
    dynamodb: Any, frozen_clock: Any
) -> None:
    # Given the claims table holding another invoice's record under this claim's reference
    insurer = LocalInsurer(dynamodb, CLAIMS_TABLE)
    claim = make_claim()
    reference = insurer.submit_claim(claim).reference
    dynamodb.Table(CLAIMS_TABLE).update_item(
        Key={"claim_id": reference},
        UpdateExpression="SET invoice_id = :other",
        ExpressionAttributeValues={":other": "inv_someone_else"},
    )

    # When the claim is submitted
    # Then it is refused rather than answered with the other invoice's receipt
    with pytest.raises(InsurerRejectedError, match="another submission"):
        insurer.submit_claim(claim)


# The HTTP insurer.


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"reference": "INS-0001", "status": "received"}'
    headers: dict[str, str] = field(default_factory=dict)
    hold_seconds: float = 0.0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedInsurer:
    """What the server answers, in order (the last answer repeats), and what it was sent."""

    url: str = ""
    answers: list[Answer] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *answers: Answer) -> None:
        self.answers = list(answers)

    def next_answer(self, seen: Seen) -> Answer:
        with self.lock:
            self.requests.append(seen)
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    insurer: ScriptedInsurer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        answer = self.server.insurer.next_answer(Seen(self.path, dict(self.headers), body))
        if answer.hold_seconds:
            # Never answers: the client's timeout ends the wait, teardown ends the hold.
            self.server.insurer.release.wait(answer.hold_seconds)
            self.close_connection = True
            return
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[ScriptedInsurer]:
    insurer = ScriptedInsurer(answers=[Answer()])
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.insurer = insurer
    insurer.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    yield insurer
    insurer.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def http_insurer(url: str, sleeps: list[float], **options: Any) -> HttpInsurer:
    return HttpInsurer(url, "test-api-key", sleep=sleeps.append, jitter=lambda: 0.5, **options)


def test_http_insurer_posts_the_notification_and_returns_the_receipt(
    server: ScriptedInsurer, sleeps: list[float], frozen_clock: Any
) -> None:
    # Given an insurer API that acknowledges at once
    insurer = http_insurer(server.url + "/", sleeps)
    notification = make_notification()

    # When the overdue is notified
    receipt = insurer.notify_overdue(notification)

    # Then the receipt carries the insurer's reference
    assert receipt.reference == "INS-0001"
    assert receipt.kind == "notification"
    assert receipt.insurer == "Local credit insurer"
    assert receipt.submitted_at == NOTIFIED_AT

    # And one JSON request went to the notifications endpoint, authenticated and keyed
    assert len(server.requests) == 1
    seen = server.requests[0]
    assert seen.path == "/v1/notifications"
    assert seen.headers["Authorization"] == "Bearer test-api-key"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Idempotency-Key"] == idempotency_key(
        "notification", notification.invoice_id
    )
    body = json.loads(seen.body)
    assert body["invoice_id"] == notification.invoice_id
    assert body["amount_outstanding"] == "1200.00"
    assert body["within_deadline"] is True
    assert sleeps == []


def test_http_insurer_posts_the_claim_to_the_claims_endpoint(
    server: ScriptedInsurer, sleeps: list[float]
) -> None:
    # Given an insurer API that acknowledges claims as under review
    server.script(Answer(body=b'{"reference": "CLM-77", "status": "under_review"}'))
    claim = make_claim()

    # When the claim is submitted
    receipt = http_insurer(server.url, sleeps).submit_claim(claim)

    # Then it went to the claims endpoint under the claim's own key
    assert (receipt.reference, receipt.kind, receipt.status) == ("CLM-77", "claim", "under_review")
    seen = server.requests[0]
    assert seen.path == "/v1/claims"
    assert seen.headers["Idempotency-Key"] == idempotency_key("claim", claim.invoice_id)
    assert seen.headers["Idempotency-Key"] != idempotency_key("notification", claim.invoice_id)
    assert json.loads(seen.body)["amount_claimed"] == "900.00"


def test_http_insurer_retries_503_with_growing_back_off(
    server: ScriptedInsurer, sleeps: list[float]
) -> None:
    # Given an insurer API that is unavailable twice, then acknowledges
    server.script(Answer(status=503, body=b"down"), Answer(status=503, body=b"down"), Answer())

    # When the overdue is notified
    receipt = http_insurer(server.url, sleeps).notify_overdue(make_notification())

    # Then it went through on the third request, with the same key each time
    assert receipt.reference == "INS-0001"
    assert len(server.requests) == 3
    assert len({seen.headers["Idempotency-Key"] for seen in server.requests}) == 1

    # And the adapter waited twice, longer the second time (0.5 s base, jitter at its middle)
    assert sleeps == [0.375, 0.75]


@pytest.mark.parametrize(
    ("retry_after", "expected_sleep"),
    [("7", 7.0), ("600", 10.0), ("soon", 0.375)],
    ids=["seconds", "capped", "unreadable: back-off"],
)
def test_http_insurer_honours_retry_after_on_429(
    server: ScriptedInsurer, sleeps: list[float], retry_after: str, expected_sleep: float
) -> None:
    # Given an insurer API that asks to slow down once
    server.script(Answer(status=429, headers={"Retry-After": retry_after}), Answer())

    # When the overdue is notified
    receipt = http_insurer(server.url, sleeps).notify_overdue(make_notification())

    # Then the adapter waited as asked, within its cap, and tried again
    assert receipt.reference == "INS-0001"
    assert len(server.requests) == 2
    assert sleeps == [expected_sleep]


def test_http_insurer_honours_retry_after_as_a_date(
    server: ScriptedInsurer, sleeps: list[float], frozen_clock: list[datetime]
) -> None:
    # Given an insurer API that asks to come back eight seconds from the product's now
    again_at = format_datetime(frozen_clock[0] + timedelta(seconds=8), usegmt=True)
    server.script(Answer(status=429, headers={"Retry-After": again_at}), Answer())

    # When the overdue is notified
    http_insurer(server.url, sleeps).notify_overdue(make_notification())

    # Then the adapter waited until then
    assert sleeps == [8.0]


def test_http_insurer_does_not_retry_a_400(server: ScriptedInsurer, sleeps: list[float]) -> None:
    # Given an insurer API that refuses the submission
    server.script(Answer(status=400, body=b'{"error": "policy_number unknown"}'))

    # When the overdue is notified
    with pytest.raises(InsurerRejectedError) as refused:
        http_insurer(server.url, sleeps).notify_overdue(make_notification())

    # Then it is refused at once, with the insurer's status and words
    assert refused.value.status == 400
    assert "policy_number unknown" in refused.value.body_excerpt
    assert len(server.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "body",
    [b"<html>gateway</html>", b'{"status": "received"}', b'["INS-1"]', b'{"reference": ""}'],
    ids=["not json", "no reference", "not an object", "empty reference"],
)
def test_http_insurer_refuses_an_answer_without_a_reference(
    server: ScriptedInsurer, sleeps: list[float], body: bytes
) -> None:
    # Given an insurer API that answers 200 with something that is not a receipt
    server.script(Answer(body=body))

    # When the overdue is notified
    # Then the answer is refused, not retried
    with pytest.raises(InsurerRejectedError) as refused:
        http_insurer(server.url, sleeps).notify_overdue(make_notification())
    assert refused.value.status == 200
    assert len(server.requests) == 1


def test_http_insurer_gives_up_on_a_server_that_never_answers(
    server: ScriptedInsurer, sleeps: list[float]
) -> None:
    # Given an insurer API that holds every connection without answering
    server.script(Answer(hold_seconds=3.0))
    insurer = http_insurer(server.url, sleeps, timeout_seconds=0.2, max_attempts=3)

    # When the overdue is notified
    started = datetime.now(UTC)
    with pytest.raises(InsurerUnavailableError) as unavailable:
        insurer.notify_overdue(make_notification())
    elapsed = datetime.now(UTC) - started

    # Then each attempt timed out, and the adapter gave up after the last one
    assert unavailable.value.attempts == 3
    assert len(server.requests) == 3
    assert len(sleeps) == 2
    assert elapsed < timedelta(seconds=2.5)


def test_http_insurer_gives_up_when_the_server_stays_unavailable(
    server: ScriptedInsurer, sleeps: list[float]
) -> None:
    # Given an insurer API that answers 502 every time
    server.script(Answer(status=502, body=b"bad gateway"))

    # When the claim is submitted
    with pytest.raises(InsurerUnavailableError, match="HTTP 502"):
        http_insurer(server.url, sleeps).submit_claim(make_claim())

    # Then it tried max_attempts times and waited between them only
    assert len(server.requests) == 4
    assert len(sleeps) == 3


def test_http_insurer_gives_up_rather_than_wait_past_its_budget(
    server: ScriptedInsurer, sleeps: list[float]
) -> None:
    # Given an insurer API that asks to come back in a minute, and a 10-second budget
    server.script(Answer(status=503, headers={"Retry-After": "60"}), Answer())
    insurer = http_insurer(server.url, sleeps, timeout_seconds=1.0, budget_seconds=10.0)

    # When the overdue is notified
    with pytest.raises(InsurerUnavailableError, match="no time left") as unavailable:
        insurer.notify_overdue(make_notification())

    # Then it reports the insurer unavailable at once instead of waiting
    assert unavailable.value.attempts == 1
    assert len(server.requests) == 1
    assert sleeps == []


def test_http_insurer_retries_a_refused_connection(sleeps: list[float]) -> None:
    # Given a loopback port nothing listens on any more
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    insurer = http_insurer(f"http://127.0.0.1:{port}", sleeps, max_attempts=2)

    # When the overdue is notified
    # Then the adapter tries again once and reports the insurer unavailable
    with pytest.raises(InsurerUnavailableError) as unavailable:
        insurer.notify_overdue(make_notification())
    assert unavailable.value.attempts == 2
    assert len(sleeps) == 1


def test_http_insurer_sends_its_key_only_over_https_off_this_machine() -> None:
    # Given an insurer URL in plain HTTP on another host
    # When the adapter is configured
    # Then it refuses, before any request
    with pytest.raises(ValueError, match="https"):
        HttpInsurer("http://insurer.invalid/api", "test-api-key")


# Choosing the adapter.


def test_no_insurer_url_means_the_local_insurer(dynamodb: Any) -> None:
    # Given an environment without an insurer API
    env = {"INSURER_API_URL": "", "CLAIMS_TABLE": CLAIMS_TABLE}

    # When the adapter is chosen
    insurer = insurer_from_env(env, dynamodb, boto3.client("secretsmanager"))

    # Then it is the local insurer on the claims table
    assert isinstance(insurer, LocalInsurer)
    receipt = insurer.notify_overdue(make_notification())
    assert dynamodb.Table(CLAIMS_TABLE).get_item(Key={"claim_id": receipt.reference})["Item"]


@pytest.mark.parametrize(
    "secret_string",
    ["key-from-secret", '{"api_key": "key-from-secret"}'],
    ids=["raw key", "json"],
)
def test_insurer_url_means_the_http_insurer_with_the_secret_key(
    dynamodb: Any, server: ScriptedInsurer, secret_string: str
) -> None:
    # Given an insurer API URL and its key in Secrets Manager
    secrets = boto3.client("secretsmanager")
    arn = secrets.create_secret(Name="arflow-insurer", SecretString=secret_string)["ARN"]
    env = {"INSURER_API_URL": server.url, "INSURER_SECRET_ARN": arn, "CLAIMS_TABLE": CLAIMS_TABLE}

    # When the adapter is chosen and used
    insurer = insurer_from_env(env, dynamodb, secrets)
    insurer.notify_overdue(make_notification())

    # Then it called the API with the key from the secret
    assert isinstance(insurer, HttpInsurer)
    assert server.requests[0].headers["Authorization"] == "Bearer key-from-secret"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "CLAIMS_TABLE"),
        ({"INSURER_API_URL": "https://insurer.invalid/api"}, "INSURER_SECRET_ARN"),
    ],
)
def test_incomplete_insurer_settings_are_refused(
    dynamodb: Any, env: dict[str, str], message: str
) -> None:
    # Given an environment missing a setting the chosen adapter needs
    # When the adapter is chosen
    # Then it is refused, naming the setting
    with pytest.raises(ValueError, match=message):
        insurer_from_env(env, dynamodb, boto3.client("secretsmanager"))
