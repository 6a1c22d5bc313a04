"""The credit report adapters: HTTP against a scripted server on loopback, the table on moto.

The server runs in this process on 127.0.0.1 with an ephemeral port. Back-off waits go to a
recorder and the breaker and budget read a clock the test moves, so only the timeout test waits
for real, a fraction of a second per attempt.
"""

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import yaml
from moto import mock_aws

from arflow import timekeeping
from arflow.dal.credit_reports import (
    CircuitBreaker,
    CreditReportFileError,
    CreditReportProvider,
    HttpCreditProvider,
    ProviderUnavailableError,
    ReportNotFoundError,
    ReportRequest,
    TableCreditProvider,
    breaker_for,
    load_reports,
    provider_from_env,
)
from arflow.models.credit import CreditReport

REPORTS_TABLE = "arflow-test-credit-reports"
FROZEN_AT = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)
REPORT_ANSWER: dict[str, Any] = {
    "reference": "CR-2026-0042",
    "grade": "B",
    "score": 72,
    "recommended_limit": "12345.00",
    "currency": "EUR",
    "report_date": "2026-08-01",
    "risk_flags": ["payment_defaults"],
}


def answer_body(**changes: Any) -> bytes:
    """The report answer with fields changed; a field given as `...` is left out."""
    body = {**REPORT_ANSWER, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def request_for(customer_id: str = "cus-7", **details: Any) -> ReportRequest:
    defaults = {"name": "Harbour & Sons Ltd", "country": "DE", "vat_id": "DE123456789"}
    return ReportRequest(customer_id=customer_id, **{**defaults, **details})


class FakeClock:
    """Monotonic seconds that move only when the test, or a recorded sleep, moves them."""

    def __init__(self) -> None:
        self.seconds = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.seconds += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def frozen_clock() -> Iterator[datetime]:
    """The product's clock, which a Retry-After date is measured against."""
    timekeeping.use_clock(lambda: FROZEN_AT)
    yield FROZEN_AT
    timekeeping.use_clock(None)


# The scripted provider.


@dataclass
class Answer:
    status: int = 200
    body: bytes = field(default_factory=answer_body)
    headers: dict[str, str] = field(default_factory=dict)
    hold_seconds: float = 0.0


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class ScriptedProvider:
    """Answers in order (the last one repeats) and records every request it was sent."""

    url: str = ""
    answers: list[Answer] = field(default_factory=lambda: [Answer()])
    requests: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *answers: Answer) -> None:
        with self.lock:
            self.answers = list(answers)

    def next_answer(self, seen: Seen) -> Answer:
        with self.lock:
            self.requests.append(seen)
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    provider: ScriptedProvider


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        seen = Seen(parts.path, parse_qs(parts.query), dict(self.headers))
        answer = self.server.provider.next_answer(seen)
        if answer.hold_seconds:
            # Holds the connection without answering: the client's timeout ends the wait, the
            # fixture's teardown ends the hold.
            self.server.provider.release.wait(answer.hold_seconds)
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
def server() -> Iterator[ScriptedProvider]:
    provider = ScriptedProvider()
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.provider = provider
    provider.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    yield provider
    provider.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def http_provider(url: str, clock: FakeClock, **options: Any) -> HttpCreditProvider:
    settings: dict[str, Any] = {
        "provider": "test-bureau",
        "sleep": clock.sleep,
        "now": clock.now,
        "jitter": lambda: 0.5,
        **options,
    }
    return HttpCreditProvider(url, "test-api-key", **settings)


# The HTTP provider: answers.


def test_http_provider_fetches_the_report(server: ScriptedProvider, clock: FakeClock) -> None:
    # Given a provider that holds a report on the company
    provider = http_provider(server.url + "/", clock)

    # When the report is fetched for a customer with a VAT id
    report = provider.fetch(request_for())

    # Then the report is the provider's answer, with an exact limit and a date
    assert report == CreditReport(
        customer_id="cus-7",
        provider="test-bureau",
        reference="CR-2026-0042",
        grade="B",
        score=72,
        recommended_limit=Decimal("12345.00"),
        currency="EUR",
        report_date=date(2026, 8, 1),
        risk_flags=["payment_defaults"],
    )
    assert str(report.recommended_limit) == "12345.00"

    # And one authenticated GET asked for it by customer, country and VAT id, not by name
    assert len(server.requests) == 1
    seen = server.requests[0]
    assert seen.path == "/v1/reports"
    assert seen.query == {"customer_id": ["cus-7"], "country": ["DE"], "vat_id": ["DE123456789"]}
    assert seen.headers["Authorization"] == "Bearer test-api-key"
    assert seen.headers["Accept"] == "application/json"
    assert clock.sleeps == []


def test_http_provider_asks_by_name_only_without_an_identifier(
    server: ScriptedProvider, clock: FakeClock
) -> None:
    # Given a customer known only by name and country
    request = ReportRequest(customer_id="cus-8", name="Nordkap Tools AB", country="SE")

    # When its report is fetched
    http_provider(server.url, clock).fetch(request)

    # Then the name is what the provider matches on
    assert server.requests[0].query == {
        "customer_id": ["cus-8"],
        "country": ["SE"],
        "name": ["Nordkap Tools AB"],
    }


def test_http_provider_reads_a_limit_sent_as_a_json_number_exactly(
    server: ScriptedProvider, clock: FakeClock
) -> None:
    # Given a provider that sends the limit as a number with more digits than a float holds
    server.script(Answer(body=answer_body().replace(b'"12345.00"', b"1234567890123456.78")))

    # When the report is fetched
    report = http_provider(server.url, clock).fetch(request_for())

    # Then the limit is the decimal that was sent
    assert report.recommended_limit == Decimal("1234567890123456.78")


@pytest.mark.parametrize(
    "answer",
    [
        Answer(status=404, body=b'{"error": "unknown company"}'),
        Answer(status=204, body=b""),
        Answer(body=b""),
        Answer(body=b"null"),
        Answer(body=b"{}"),
    ],
    ids=["404", "204", "empty body", "null", "empty object"],
)
def test_http_provider_reports_no_report_found(
    server: ScriptedProvider, clock: FakeClock, answer: Answer
) -> None:
    # Given a provider that has no report on the company
    server.script(answer)

    # When the report is fetched
    # Then no report was found, after one request and no wait
    with pytest.raises(ReportNotFoundError, match="cus-7"):
        http_provider(server.url, clock).fetch(request_for())
    assert len(server.requests) == 1
    assert clock.sleeps == []


def test_http_provider_does_not_retry_a_400(server: ScriptedProvider, clock: FakeClock) -> None:
    # Given a provider that refuses the request, echoing the company back
    server.script(Answer(status=400, body=b'{"error": "vat_id DE123456789 is malformed"}'))

    # When the report is fetched
    with pytest.raises(ProviderUnavailableError) as unavailable:
        http_provider(server.url, clock).fetch(request_for())

    # Then it is refused at once, with the status and without the body
    assert unavailable.value.status == 400
    assert "HTTP 400" in str(unavailable.value)
    assert "DE123456789" not in str(unavailable.value)
    assert len(server.requests) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>bad gateway</html>", "not JSON"),
        (b'{"reference": "CR-1", "score"', "not JSON"),
        (b'["CR-1"]', "not a JSON object"),
        (answer_body(score=...), "missing score"),
        (answer_body(report_date=..., risk_flags=...), "missing report_date, risk_flags"),
        (answer_body(score=150), "fields score (less_than_equal)"),
        (answer_body(recommended_limit="a lot"), "fields recommended_limit (decimal_parsing)"),
        (answer_body(currency=None), "fields (report) (value_error)"),
        (answer_body(customer_id="cus-99"), "a report on another customer"),
    ],
    ids=[
        "html",
        "truncated",
        "not an object",
        "missing a field",
        "missing two fields",
        "score out of range",
        "limit not a number",
        "limit without currency",
        "another customer",
    ],
)
def test_http_provider_refuses_an_invalid_answer(
    server: ScriptedProvider, clock: FakeClock, body: bytes, problem: str
) -> None:
    # Given a provider that answers 200 with something that is not a report
    server.script(Answer(body=body))

    # When the report is fetched
    with pytest.raises(ProviderUnavailableError) as unavailable:
        http_provider(server.url, clock).fetch(request_for())

    # Then the answer is refused, saying what is wrong with it, and not retried
    assert str(unavailable.value) == f"invalid answer from test-bureau: {problem}"
    assert len(server.requests) == 1
    assert clock.sleeps == []


def test_http_provider_refuses_an_answer_larger_than_a_report(
    server: ScriptedProvider, clock: FakeClock
) -> None:
    # Given a provider that answers with half a megabyte
    server.script(Answer(body=b" " * 500_000 + answer_body()))

    # When the report is fetched
    # Then the answer is refused unread
    with pytest.raises(ProviderUnavailableError, match="larger than a report"):
        http_provider(server.url, clock).fetch(request_for())


# The HTTP provider: retries, timeouts and the budget.


def test_http_provider_retries_503_with_growing_back_off(
    server: ScriptedProvider, clock: FakeClock
) -> None:
    # Given a provider that is unavailable twice, then answers
    server.script(Answer(status=503, body=b"down"), Answer(status=503, body=b"down"), Answer())

    # When the report is fetched
    report = http_provider(server.url, clock).fetch(request_for())

    # Then it came on the third request
    assert report.reference == "CR-2026-0042"
    assert len(server.requests) == 3

    # And the adapter waited twice, longer the second time (0.5 s base, jitter at its middle)
    assert clock.sleeps == [0.375, 0.75]


@pytest.mark.parametrize(
    ("retry_after", "expected_sleep"),
    [
        ("3", 3.0),
        ("600", 5.0),
        (format_datetime(FROZEN_AT + timedelta(seconds=4), usegmt=True), 4.0),
        ("soon", 0.375),
    ],
    ids=["seconds", "capped", "date", "unreadable: back-off"],
)
def test_http_provider_honours_retry_after_on_429(
    server: ScriptedProvider,
    clock: FakeClock,
    frozen_clock: datetime,
    retry_after: str,
    expected_sleep: float,
) -> None:
    # Given a provider that asks to slow down once
    server.script(Answer(status=429, headers={"Retry-After": retry_after}), Answer())

    # When the report is fetched
    report = http_provider(server.url, clock).fetch(request_for())

    # Then the adapter waited as asked, within its cap, and tried again
    assert report.reference == "CR-2026-0042"
    assert len(server.requests) == 2
    assert clock.sleeps == [expected_sleep]


def test_http_provider_gives_up_when_the_provider_stays_unavailable(
    server: ScriptedProvider, clock: FakeClock
) -> None:
    # Given a provider that answers 502 every time
    server.script(Answer(status=502, body=b"bad gateway"))

    # When the report is fetched
    with pytest.raises(ProviderUnavailableError, match=r"4 attempt\(s\): HTTP 502$") as failed:
        http_provider(server.url, clock).fetch(request_for())

    # Then it tried max_attempts times and waited between them only
    assert failed.value.attempts == 4
    assert len(server.requests) == 4
    assert clock.sleeps == [0.375, 0.75, 1.5]


def test_http_provider_gives_up_on_a_provider_that_never_answers(
    server: ScriptedProvider, clock: FakeClock
) -> None:
    # Given a provider that holds every connection without answering
    server.script(Answer(hold_seconds=3.0))
    provider = http_provider(server.url, clock, timeout_seconds=0.2, max_attempts=3)

    # When the report is fetched
    started = time.monotonic()
    with pytest.raises(ProviderUnavailableError, match="timed out") as failed:
        provider.fetch(request_for())
    elapsed = time.monotonic() - started

    # Then each attempt timed out, and the adapter gave up after the last one
    assert failed.value.attempts == 3
    assert len(server.requests) == 3
    assert len(clock.sleeps) == 2
    assert 0.5 < elapsed < 2.0


def test_http_provider_stops_retrying_when_its_budget_runs_out(
    server: ScriptedProvider, clock: FakeClock
) -> None:
    # Given a provider that is always unavailable, and a budget of 4 s for 1 s attempts
    server.script(Answer(status=503, body=b"down"))
    provider = http_provider(
        server.url,
        clock,
        backoff_seconds=1.0,
        timeout_seconds=1.0,
        budget_seconds=4.0,
        max_attempts=10,
    )

    # When the report is fetched
    with pytest.raises(ProviderUnavailableError, match="no time left for a retry") as failed:
        provider.fetch(request_for())

    # Then the third retry was not started: waiting 3 s more and trying would end past 4 s
    assert failed.value.attempts == 3
    assert len(server.requests) == 3
    assert clock.sleeps == [0.75, 1.5]


def test_http_provider_gives_up_rather_than_wait_past_its_budget(
    server: ScriptedProvider, clock: FakeClock
) -> None:
    # Given a provider that asks to come back after the adapter's whole budget
    server.script(Answer(status=503, headers={"Retry-After": "5"}), Answer())
    provider = http_provider(server.url, clock, timeout_seconds=1.0, budget_seconds=5.0)

    # When the report is fetched
    with pytest.raises(ProviderUnavailableError, match="no time left"):
        provider.fetch(request_for())

    # Then it reports the provider unavailable at once instead of waiting
    assert len(server.requests) == 1
    assert clock.sleeps == []


def test_http_provider_retries_a_refused_connection(clock: FakeClock) -> None:
    # Given a loopback port nothing listens on any more
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = http_provider(f"http://127.0.0.1:{port}", clock, max_attempts=2)

    # When the report is fetched
    # Then the adapter tries again once and reports that it could not connect
    with pytest.raises(ProviderUnavailableError, match="could not connect") as failed:
        provider.fetch(request_for())
    assert failed.value.attempts == 2
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://credit.example.invalid/api",
        "ftp://127.0.0.1/api",
        "https://user:secret@credit.example.invalid/api",
        "https://credit.example.invalid/api?tenant=1",
    ],
    ids=["plain http off this machine", "not http", "login in the URL", "query in the URL"],
)
def test_http_provider_refuses_an_unsafe_url(url: str) -> None:
    # Given a provider URL the key must not be sent to
    # When the adapter is configured
    # Then it refuses, before any request
    with pytest.raises(ValueError, match="credit provider URL"):
        HttpCreditProvider(url, "test-api-key")


# The circuit breaker.


def test_circuit_opens_after_consecutive_failures_and_closes_after_a_good_trial(
    server: ScriptedProvider, clock: FakeClock
) -> None:
    # Given a provider that keeps failing, behind a breaker that opens after 2 failures
    server.script(Answer(status=503, body=b"down"))
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=60, now=clock.now)
    provider = http_provider(server.url, clock, max_attempts=1, breaker=breaker)

    # When two fetches fail
    for _ in range(2):
        with pytest.raises(ProviderUnavailableError, match="HTTP 503"):
            provider.fetch(request_for())

    # Then the circuit is open and the next fetch fails without reaching the provider
    assert breaker.state == "open"
    with pytest.raises(ProviderUnavailableError, match="circuit open"):
        provider.fetch(request_for())
    assert len(server.requests) == 2

    # When the pause is over and the provider answers again
    clock.seconds += 60
    server.script(Answer())
    assert breaker.state == "half_open"
    report = provider.fetch(request_for())

    # Then the trial went through and closed the circuit
    assert report.reference == "CR-2026-0042"
    assert len(server.requests) == 3
    assert breaker.state == "closed"


def test_circuit_reopens_when_the_trial_fails(server: ScriptedProvider, clock: FakeClock) -> None:
    # Given an open circuit whose pause is over, on a provider still failing
    server.script(Answer(status=500, body=b"down"))
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=30, now=clock.now)
    provider = http_provider(server.url, clock, max_attempts=1, breaker=breaker)
    with pytest.raises(ProviderUnavailableError, match="HTTP 500"):
        provider.fetch(request_for())
    clock.seconds += 30

    # When the trial fetch fails too
    with pytest.raises(ProviderUnavailableError, match="HTTP 500"):
        provider.fetch(request_for())

    # Then the circuit is open again for a full pause, and fetches fail fast
    assert breaker.state == "open"
    clock.seconds += 29
    with pytest.raises(ProviderUnavailableError, match="circuit open"):
        provider.fetch(request_for())
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Answer(status=404, body=b""), ReportNotFoundError),
        (Answer(status=403, body=b""), ProviderUnavailableError),
    ],
    ids=["no report", "refused"],
)
def test_circuit_stays_closed_while_the_provider_answers(
    server: ScriptedProvider, clock: FakeClock, answer: Answer, error: type[Exception]
) -> None:
    # Given a breaker that opens after one outage
    server.script(answer)
    breaker = CircuitBreaker(failure_threshold=1, now=clock.now)
    provider = http_provider(server.url, clock, breaker=breaker)

    # When the provider answers, but with no report or a refusal, twice
    for _ in range(2):
        with pytest.raises(error):
            provider.fetch(request_for())

    # Then both requests reached it: an answer is not an outage
    assert breaker.state == "closed"
    assert len(server.requests) == 2


def test_circuit_lets_one_trial_through_at_a_time(clock: FakeClock) -> None:
    # Given an open circuit whose pause is over
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=10, now=clock.now)

    def outage() -> str:
        raise ProviderUnavailableError("down")

    with pytest.raises(ProviderUnavailableError, match="down"):
        breaker.call(outage)
    clock.seconds += 10

    # When a trial call is under way on another thread
    started, finish = threading.Event(), threading.Event()
    results: list[str] = []

    def slow_trial() -> str:
        started.set()
        finish.wait(5)
        return "answered"

    trial = threading.Thread(target=lambda: results.append(breaker.call(slow_trial)))
    trial.start()
    assert started.wait(5)

    # Then a second call fails fast, without running
    with pytest.raises(ProviderUnavailableError, match="trial call is in progress"):
        breaker.call(lambda: "should not run")

    # And the trial's success closes the circuit
    finish.set()
    trial.join(5)
    assert results == ["answered"]
    assert breaker.state == "closed"


# The reports table.


@dataclass(frozen=True)
class AwsClients:
    dynamodb: Any
    secretsmanager: Any


@pytest.fixture(scope="module")
def aws() -> Iterator[AwsClients]:
    """One moto account for the module: its clients take longer to make than the tests to run."""
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_SESSION_TOKEN", "testing")
        yield AwsClients(
            dynamodb=boto3.client("dynamodb", region_name="us-east-1"),
            secretsmanager=boto3.client("secretsmanager", region_name="us-east-1"),
        )


@pytest.fixture
def dynamodb(aws: AwsClients) -> Iterator[Any]:
    """An empty reports table, gone again after the test."""
    aws.dynamodb.create_table(
        TableName=REPORTS_TABLE,
        KeySchema=[{"AttributeName": "customer_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "customer_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield aws.dynamodb
    aws.dynamodb.delete_table(TableName=REPORTS_TABLE)


@pytest.fixture
def secrets(aws: AwsClients) -> Any:
    return aws.secretsmanager


REPORTS_FILE: list[dict[str, Any]] = [
    {
        "customer_id": "cus-7",
        "provider": "local",
        "reference": "LOCAL-CR-7",
        "grade": "B",
        "score": 72,
        "recommended_limit": Decimal("12345.10"),
        "currency": "EUR",
        "report_date": "2026-08-01",
        "risk_flags": ["payment_defaults"],
    },
    {
        "customer_id": "cus-8",
        "provider": "local",
        "reference": "LOCAL-CR-8",
        "report_date": "2026-07-15",
    },
]


# The same two reports as a person would write them in YAML: bare dates and decimals.
REPORTS_YAML = """\
- customer_id: cus-7
  provider: local
  reference: LOCAL-CR-7
  grade: B
  score: 72
  recommended_limit: 12345.10
  currency: EUR
  report_date: 2026-08-01
  risk_flags: [payment_defaults]
- customer_id: cus-8
  provider: local
  reference: LOCAL-CR-8
  report_date: 2026-07-15
"""


def write_reports(path: Path, entries: list[Any]) -> Path:
    path.write_text(json.dumps(entries, default=str))
    return path


@pytest.mark.parametrize("name", ["reports.json", "reports.yaml"])
def test_loaded_reports_are_fetched_from_the_table(
    dynamodb: Any, tmp_path: Path, name: str
) -> None:
    # Given a file of two reports, loaded into the table
    path = tmp_path / name
    if name.endswith(".yaml"):
        path.write_text(REPORTS_YAML)
    else:
        write_reports(path, REPORTS_FILE)
    loaded = load_reports(path, REPORTS_TABLE, dynamodb)
    provider = TableCreditProvider(dynamodb, REPORTS_TABLE)

    # When a customer's report is fetched
    report = provider.fetch(request_for("cus-7"))

    # Then both were loaded, and the report is the file's, limit exact and stored as a number
    assert loaded == 2
    assert report.recommended_limit == Decimal("12345.10")
    assert report.report_date == date(2026, 8, 1)
    assert (report.grade, report.score, report.risk_flags) == ("B", 72, ["payment_defaults"])
    stored = dynamodb.get_item(TableName=REPORTS_TABLE, Key={"customer_id": {"S": "cus-7"}})
    assert stored["Item"]["recommended_limit"] == {"N": "12345.10"}

    # And a report with only the required fields reads back with its gaps empty
    sparse = provider.fetch(request_for("cus-8"))
    assert (sparse.score, sparse.recommended_limit, sparse.risk_flags) == (None, None, [])


def test_table_reports_no_report_for_an_unknown_customer(dynamodb: Any, tmp_path: Path) -> None:
    # Given a table holding other customers' reports
    load_reports(write_reports(tmp_path / "reports.json", REPORTS_FILE), REPORTS_TABLE, dynamodb)

    # When an unknown customer's report is fetched
    # Then none is found
    with pytest.raises(ReportNotFoundError, match="cus-404"):
        TableCreditProvider(dynamodb, REPORTS_TABLE).fetch(request_for("cus-404"))


def test_table_refuses_a_stored_item_that_is_not_a_report(dynamodb: Any) -> None:
    # Given an item written by hand, with a score out of range
    dynamodb.put_item(
        TableName=REPORTS_TABLE,
        Item={
            "customer_id": {"S": "cus-7"},
            "provider": {"S": "local"},
            "reference": {"S": "LOCAL-CR-7"},
            "score": {"N": "250"},
            "report_date": {"S": "2026-08-01"},
        },
    )

    # When the report is fetched
    # Then it is refused as an invalid answer, naming the field
    with pytest.raises(ProviderUnavailableError, match=r"invalid answer.*score"):
        TableCreditProvider(dynamodb, REPORTS_TABLE).fetch(request_for("cus-7"))


def test_table_read_failure_means_the_provider_is_unavailable(dynamodb: Any) -> None:
    # Given a reports table name that does not exist
    provider = TableCreditProvider(dynamodb, "arflow-test-no-such-table")

    # When a report is fetched
    # Then the provider is unavailable, with DynamoDB's error code
    with pytest.raises(ProviderUnavailableError, match="ResourceNotFoundException"):
        provider.fetch(request_for())


@pytest.mark.parametrize(
    ("bad_entry", "message"),
    [
        (
            {**REPORTS_FILE[1], "recommended_limit": "a lot", "currency": "EUR"},
            r"entry 2 \(customer cus-8\): field recommended_limit: ",
        ),
        ({**REPORTS_FILE[1], "score": 101}, r"entry 2 \(customer cus-8\): field score: "),
        ({**REPORTS_FILE[1], "reference": ...}, r"entry 2 \(customer cus-8\): field reference: "),
        (
            {**REPORTS_FILE[1], "customer_id": "cus-7"},
            r"entry 2 \(customer cus-7\): field customer_id: already used by entry 1",
        ),
        ("cus-8", r"entry 2 is not a report object"),
    ],
    ids=["limit not a number", "score out of range", "no reference", "repeated", "not an object"],
)
def test_a_bad_report_file_loads_nothing(
    dynamodb: Any, tmp_path: Path, bad_entry: Any, message: str
) -> None:
    # Given a file whose second of three entries is wrong
    if isinstance(bad_entry, dict):
        bad_entry = {k: v for k, v in bad_entry.items() if v is not ...}
    third = {**REPORTS_FILE[1], "customer_id": "cus-9", "reference": "LOCAL-CR-9"}
    path = write_reports(tmp_path / "reports.json", [REPORTS_FILE[0], bad_entry, third])

    # When it is loaded
    # Then the error names the entry and the field, and the table stays empty
    with pytest.raises(CreditReportFileError, match=message):
        load_reports(path, REPORTS_TABLE, dynamodb)
    assert dynamodb.scan(TableName=REPORTS_TABLE)["Count"] == 0


def test_a_report_file_that_is_not_a_list_loads_nothing(dynamodb: Any, tmp_path: Path) -> None:
    # Given a YAML file holding one report, not a list of them
    path = tmp_path / "reports.yaml"
    path.write_text(yaml.safe_dump(REPORTS_FILE[1]))

    # When it is loaded
    # Then it is refused and the table stays empty
    with pytest.raises(CreditReportFileError, match="must hold a list"):
        load_reports(path, REPORTS_TABLE, dynamodb)
    assert dynamodb.scan(TableName=REPORTS_TABLE)["Count"] == 0


# Choosing the provider.


def test_no_provider_url_means_the_reports_table(
    dynamodb: Any, secrets: Any, tmp_path: Path
) -> None:
    # Given an environment without a provider URL, and a loaded reports table
    load_reports(write_reports(tmp_path / "reports.json", REPORTS_FILE), REPORTS_TABLE, dynamodb)
    env = {"CREDIT_PROVIDER_URL": " ", "CREDIT_REPORTS_TABLE": REPORTS_TABLE}

    # When the provider is chosen and asked
    provider = provider_from_env(env, dynamodb, secrets)
    report = provider.fetch(request_for("cus-7"))

    # Then it is the table
    assert isinstance(provider, TableCreditProvider)
    assert isinstance(provider, CreditReportProvider)
    assert report.reference == "LOCAL-CR-7"


@pytest.mark.parametrize(
    "secret_string",
    ["key-from-secret", '{"api_key": "key-from-secret"}'],
    ids=["raw key", "json"],
)
def test_provider_url_means_the_http_provider_with_the_secret_key(
    dynamodb: Any, secrets: Any, server: ScriptedProvider, secret_string: str
) -> None:
    # Given a provider URL and its key in Secrets Manager
    name = f"arflow-credit-{uuid.uuid4().hex}"
    arn = secrets.create_secret(Name=name, SecretString=secret_string)["ARN"]
    env = {
        "CREDIT_PROVIDER_URL": server.url,
        "CREDIT_PROVIDER_SECRET_ARN": arn,
        "CREDIT_REPORTS_TABLE": REPORTS_TABLE,
    }

    # When the provider is chosen and asked
    provider = provider_from_env(env, dynamodb, secrets)
    report = provider.fetch(request_for())

    # Then it called the API with the key from the secret
    assert isinstance(provider, HttpCreditProvider)
    assert report.provider == "127.0.0.1"
    assert server.requests[0].headers["Authorization"] == "Bearer key-from-secret"

    # And a provider chosen again, as a warm invocation would, shares the URL's breaker
    again = provider_from_env(env, dynamodb, secrets)
    assert isinstance(again, HttpCreditProvider)
    assert again.breaker is provider.breaker is breaker_for(server.url + "/")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "CREDIT_REPORTS_TABLE"),
        ({"CREDIT_PROVIDER_URL": "https://credit.example.invalid"}, "CREDIT_PROVIDER_SECRET_ARN"),
    ],
)
def test_incomplete_provider_settings_are_refused(
    dynamodb: Any, secrets: Any, env: dict[str, str], message: str
) -> None:
    # Given an environment missing a setting the chosen provider needs
    # When the provider is chosen
    # Then it is refused, naming the setting
    with pytest.raises(ValueError, match=message):
        provider_from_env(env, dynamodb, secrets)
