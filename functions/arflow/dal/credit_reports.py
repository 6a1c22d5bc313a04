"""Credit reports on a buyer: from a credit-information or credit-insurer API, or a local table.

Whatever goes wrong, `fetch` ends in a report, `ReportNotFoundError` or `ProviderUnavailableError`;
the credit check turns either error into a referral to finance with the error's reason, never into
an approval.

The HTTP contract (`HttpCreditProvider`):

    GET {base_url}/reports?customer_id=...&country=...&vat_id=...&company_id=...
    Authorization: Bearer <api key>
    Accept: application/json

- Only the parameters the request holds are sent. `name` is sent only when the request has neither
  `vat_id` nor `company_id`: a query string can end up in access logs, and a registry identifier
  matches a company better than its name does.
- 200 with a JSON object holding every one of these keys (null where the field allows it):

      {"reference": "CR-1", "grade": "B", "score": 72, "recommended_limit": "12345.00",
       "currency": "EUR", "report_date": "2026-08-01", "risk_flags": []}

  `score` is 0-100, higher is better; `recommended_limit` is a decimal string (a JSON number is
  read as an exact decimal too). An answer may echo `customer_id`; if it does, it must match.
  Other keys are ignored.
- 404, 204, or a 2xx with an empty body, `null`, `{}` or `[]`: the provider has no report for this
  company (`ReportNotFoundError`).
- 429 and 5xx: retried (honouring `Retry-After`, capped); any other status is final.

A GET asks for nothing to change, so an attempt that may have reached the provider is safe to
repeat.
"""

import email.utils
import ipaddress
import json
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import urllib3
import yaml
from aws_lambda_powertools import Logger
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from arflow.dal.aws import api_key_from_secret
from arflow.models.credit import CreditReport
from arflow.models.invoice import CountryCode
from arflow.timekeeping import utcnow

logger = Logger()

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half_open"]

# The keys every answer of the HTTP contract carries; customer_id and provider come from our side.
_ANSWER_FIELDS = (
    "reference",
    "grade",
    "score",
    "recommended_limit",
    "currency",
    "report_date",
    "risk_flags",
)
# A report is a few hundred bytes: anything far larger is not one, and is not held in memory.
_MAX_ANSWER_BYTES = 256 * 1024
_USER_AGENT = "arflow-credit-reports"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class ProviderUnavailableError(Exception):
    """No report could be had: no answer in time, 429/5xx after retries, a refused request, an
    invalid answer, or the circuit open. The message says which.

    `outage` is False when the provider answered and refused this one request (a 4xx other than
    404): the provider is up, so the circuit breaker does not count it against the provider.
    """

    def __init__(
        self, message: str, *, status: int | None = None, attempts: int = 0, outage: bool = True
    ) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.outage = outage


class ReportNotFoundError(LookupError):
    """The provider has no report for this company."""


class CreditReportFileError(ValueError):
    """A file of credit reports that cannot be loaded; the message names the entry and field."""


class ReportRequest(BaseModel):
    """Who a report is wanted for: our customer id, and what a provider can match a company by."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    customer_id: str = Field(min_length=1)
    name: str | None = None
    country: CountryCode | None = None
    vat_id: str | None = None
    company_id: str | None = None


@runtime_checkable
class CreditReportProvider(Protocol):
    def fetch(self, request: ReportRequest) -> CreditReport: ...


def _is_outage(error: BaseException) -> bool:
    if isinstance(error, ReportNotFoundError):
        return False
    if isinstance(error, ProviderUnavailableError):
        return error.outage
    # An error nobody foresaw counts against the provider: the half-open trial must end either
    # way, and failing safe keeps a broken adapter from hammering the provider.
    return True


class CircuitBreaker:
    """Stops calling a provider that keeps failing, and tries it again after a pause.

    Closed: calls go through; `failure_threshold` consecutive outages open it. Open: calls fail
    at once with `ProviderUnavailableError("circuit open ...")` for `reset_seconds`. Then
    half-open: one trial call goes through (the others still fail fast); its success closes the
    circuit, its failure opens it again for another `reset_seconds`.

    An answer counts as a success, a "no report" answer and a refused request included: the
    provider is up.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 60.0,
        now: Callable[[], float] = time.monotonic,
        name: str = "credit provider",
    ) -> None:
        if failure_threshold < 1 or reset_seconds <= 0:
            raise ValueError("failure_threshold must be at least 1 and reset_seconds positive")
        self._failure_threshold = failure_threshold
        self._reset_seconds = reset_seconds
        self._now = now
        self._name = name
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0

    @property
    def state(self) -> BreakerState:
        """The state the next call meets: an open circuit whose pause is over reads half-open."""
        with self._lock:
            if self._state == "open" and self._now() - self._opened_at >= self._reset_seconds:
                return "half_open"
            return self._state

    def call(self, fn: Callable[[], T]) -> T:
        self._admit()
        try:
            result = fn()
        except BaseException as error:
            self._record(succeeded=not _is_outage(error))
            raise
        self._record(succeeded=True)
        return result

    def _admit(self) -> None:
        with self._lock:
            if self._state == "closed":
                return
            waited = self._now() - self._opened_at
            if self._state == "open" and waited >= self._reset_seconds:
                self._state = "half_open"
                trial = True
            else:
                trial = False
                if self._state == "open":
                    reason = f"retry in {self._reset_seconds - waited:.1f} s"
                else:
                    reason = "a trial call is in progress"

        if trial:
            logger.info("Credit provider circuit half-open", provider=self._name)
            return
        logger.warning("Credit provider call refused, circuit open", provider=self._name)
        raise ProviderUnavailableError(f"circuit open for {self._name}: {reason}")

    def _record(self, *, succeeded: bool) -> None:
        with self._lock:
            before = self._state
            if succeeded:
                self._state = "closed"
                self._failures = 0
            elif self._state == "half_open":
                self._state = "open"
                self._opened_at = self._now()
            elif self._state == "closed":
                self._failures += 1
                if self._failures >= self._failure_threshold:
                    self._state = "open"
                    self._opened_at = self._now()
            # An outage reported while already open (a call admitted before it opened) changes
            # nothing: the pause runs from the opening.
            after = self._state
            failures = self._failures

        if after == "open" and before != "open":
            logger.warning(
                "Credit provider circuit opened",
                provider=self._name,
                failures=failures,
                reset_seconds=self._reset_seconds,
            )
        elif after == "closed" and before != "closed":
            logger.info("Credit provider circuit closed", provider=self._name)


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(base_url: str) -> CircuitBreaker:
    """The process-wide breaker of one provider URL: warm invocations of a Lambda share it."""
    key = base_url.strip().rstrip("/")
    with _breakers_lock:
        found = _breakers.get(key)
        if found is None:
            host = urllib3.util.parse_url(key).host or "credit provider"
            found = _breakers[key] = CircuitBreaker(name=host)
        return found


@dataclass(frozen=True)
class _Retryable:
    """An attempt that may succeed if repeated: what went wrong, and the server's wait, if any."""

    problem: str
    retry_after: float | None = None


def _is_loopback(host: str | None) -> bool:
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


class HttpCreditProvider:
    """A credit-information or credit-insurer API, on the contract in this module's docstring.

    Connection errors, timeouts, 429 and 5xx are retried with exponential back-off and jitter,
    or after the server's `Retry-After` (capped). `budget_seconds` bounds the whole call, waits
    included: a retry that could not finish inside it is not started, so the credit check
    refers the invoice before the Lambda timeout (30 s in template.yaml) cuts it off. A circuit
    breaker around it all stops the calls while the provider keeps failing.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        provider: str | None = None,
        timeout_seconds: float = 5.0,
        max_attempts: int = 4,
        backoff_seconds: float = 0.5,
        backoff_cap_seconds: float = 4.0,
        retry_after_cap_seconds: float = 5.0,
        budget_seconds: float = 20.0,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        url = urllib3.util.parse_url(base_url.strip())
        # The key travels as a bearer token: plain HTTP only to this machine.
        if url.scheme != "https" and not (url.scheme == "http" and _is_loopback(url.host)):
            raise ValueError("the credit provider URL must be https (http only to loopback)")
        if not url.host or url.auth or url.query or url.fragment:
            raise ValueError("the credit provider URL must be a host and path, no query or login")
        if not api_key.strip():
            raise ValueError("the credit provider API key is empty")
        if max_attempts < 1 or timeout_seconds <= 0 or budget_seconds < timeout_seconds:
            raise ValueError(
                "max_attempts must be at least 1, timeout_seconds positive and within the budget"
            )

        self._url = f"{base_url.strip().rstrip('/')}/reports"
        self._provider = provider or url.host
        self._headers = {
            "Authorization": f"Bearer {api_key.strip()}",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        self._timeout_seconds = timeout_seconds
        self._max_attempts = max_attempts
        self._backoff_seconds = backoff_seconds
        self._backoff_cap_seconds = backoff_cap_seconds
        self._retry_after_cap_seconds = retry_after_cap_seconds
        self._budget_seconds = budget_seconds
        self._breaker = breaker or CircuitBreaker(now=now, name=self._provider)
        self._sleep = sleep
        self._now = now
        self._jitter = jitter
        self._pool = pool or urllib3.PoolManager(retries=False)

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    def fetch(self, request: ReportRequest) -> CreditReport:
        return self._breaker.call(lambda: self._fetch(request))

    def _fetch(self, request: ReportRequest) -> CreditReport:
        fields = _query_fields(request)
        started = self._now()
        problem = ""
        attempts = 0
        for attempt in range(1, self._max_attempts + 1):
            attempts = attempt
            outcome = self._attempt(request, fields)
            if not isinstance(outcome, _Retryable):
                return outcome

            problem = outcome.problem
            delay = self._backoff(attempt) if outcome.retry_after is None else outcome.retry_after
            if attempt == self._max_attempts:
                break
            if self._now() - started + delay + self._timeout_seconds > self._budget_seconds:
                problem = f"{problem}; no time left for a retry"
                break
            logger.warning(
                "Credit provider call failed, retrying",
                customer_id=request.customer_id,
                attempt=attempt,
                problem=problem,
                delay_seconds=round(delay, 3),
            )
            self._sleep(delay)

        logger.error(
            "Credit provider unavailable",
            customer_id=request.customer_id,
            attempts=attempts,
            problem=problem,
        )
        raise ProviderUnavailableError(
            f"{self._provider} gave no report in {attempts} attempt(s): {problem}",
            attempts=attempts,
        )

    def _attempt(self, request: ReportRequest, fields: dict[str, str]) -> CreditReport | _Retryable:
        seconds = self._timeout_seconds
        try:
            response = self._pool.request(
                "GET",
                self._url,
                fields=fields,
                headers=self._headers,
                # `total` caps connect and first read together, not one after the other.
                # NOTE: each later read of the body gets its own timeout, so a server that drips
                # bytes can stretch an attempt; the size cap bounds how far.
                timeout=urllib3.Timeout(total=seconds, connect=seconds, read=seconds),
                retries=False,
                redirect=False,
                preload_content=False,
            )
        except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError) as error:
            return _Retryable(_describe(error))
        except urllib3.exceptions.HTTPError as error:
            # TLS failures and malformed URLs: retrying changes nothing.
            raise ProviderUnavailableError(
                f"{self._provider} cannot be called: {type(error).__name__}"
            ) from error

        # The connection goes back to the pool however this ends; urllib3 drops one that still
        # holds an unread body instead of reusing it.
        try:
            status = response.status
            if status == 404:
                raise self._not_found(request)
            if status == 429 or status >= 500:
                retry_after = self._retry_after(response.headers.get("Retry-After"))
                return _Retryable(f"HTTP {status}", retry_after)
            if not 200 <= status < 300:
                # The body is not logged: a provider may echo the company's details back.
                logger.error(
                    "Credit provider refused the request",
                    customer_id=request.customer_id,
                    status=status,
                )
                raise ProviderUnavailableError(
                    f"{self._provider} refused the request: HTTP {status}",
                    status=status,
                    attempts=1,
                    outage=False,
                )
            try:
                data = response.read(_MAX_ANSWER_BYTES + 1)
            except urllib3.exceptions.HTTPError as error:
                return _Retryable(f"answer cut off: {_describe(error)}")
        finally:
            response.release_conn()

        return self._report(request, status, data)

    def _report(self, request: ReportRequest, status: int, data: bytes) -> CreditReport:
        if len(data) > _MAX_ANSWER_BYTES:
            raise self._invalid(request, status, "larger than a report")
        if not data.strip():
            raise self._not_found(request)
        try:
            # Numbers become exact decimals: a limit must not pass through a float.
            answer = json.loads(data, parse_float=Decimal)
        except (ValueError, RecursionError):
            raise self._invalid(request, status, "not JSON") from None
        if answer in (None, {}, []):
            raise self._not_found(request)
        if not isinstance(answer, dict):
            raise self._invalid(request, status, "not a JSON object")
        echoed = answer.get("customer_id")
        if echoed is not None and echoed != request.customer_id:
            raise self._invalid(request, status, "a report on another customer")
        missing = [key for key in _ANSWER_FIELDS if key not in answer]
        if missing:
            raise self._invalid(request, status, f"missing {', '.join(missing)}")

        try:
            report = CreditReport.model_validate(
                {
                    "customer_id": request.customer_id,
                    "provider": self._provider,
                    **{key: answer[key] for key in _ANSWER_FIELDS},
                }
            )
        except ValidationError as error:
            # Field names and error kinds only: the messages of custom checks may quote values.
            wrong = ", ".join(f"{_field_of(e['loc'])} ({e['type']})" for e in error.errors())
            raise self._invalid(request, status, f"fields {wrong}") from None

        logger.info(
            "Credit report received",
            customer_id=request.customer_id,
            reference=report.reference,
        )
        return report

    def _invalid(
        self, request: ReportRequest, status: int, problem: str
    ) -> ProviderUnavailableError:
        logger.error(
            "Credit provider answer invalid",
            customer_id=request.customer_id,
            status=status,
            problem=problem,
        )
        return ProviderUnavailableError(
            f"invalid answer from {self._provider}: {problem}", status=status, attempts=1
        )

    def _not_found(self, request: ReportRequest) -> ReportNotFoundError:
        logger.info("Credit provider has no report", customer_id=request.customer_id)
        return ReportNotFoundError(
            f"{self._provider} has no report for customer {request.customer_id}"
        )

    def _backoff(self, attempt: int) -> float:
        # At least half the exponential step, plus a random share of the other half: retries of
        # many invocations spread out, and each wait still grows.
        step = min(self._backoff_cap_seconds, self._backoff_seconds * 2.0 ** (attempt - 1))
        return step * (0.5 + 0.5 * self._jitter())

    def _retry_after(self, value: str | None) -> float | None:
        """Seconds from a `Retry-After` header (delay-seconds or HTTP-date), capped."""
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - utcnow()).total_seconds()
        if not math.isfinite(seconds):
            return None
        return min(max(seconds, 0.0), self._retry_after_cap_seconds)


def _query_fields(request: ReportRequest) -> dict[str, str]:
    fields = {
        "customer_id": request.customer_id,
        "country": request.country,
        "vat_id": request.vat_id,
        "company_id": request.company_id,
    }
    if not request.vat_id and not request.company_id:
        fields["name"] = request.name
    return {key: value for key, value in fields.items() if value}


def _field_of(location: tuple[int | str, ...]) -> str:
    """A validation error's field, dotted; `(report)` for a check across fields."""
    return ".".join(str(part) for part in location) or "(report)"


def _describe(error: urllib3.exceptions.HTTPError) -> str:
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return "could not connect"
    if isinstance(error, urllib3.exceptions.TimeoutError):
        return "timed out"
    if isinstance(error, urllib3.exceptions.ProtocolError):
        return "connection dropped"
    return type(error).__name__


class TableCreditProvider:
    """The local default: reports kept in a DynamoDB table, one item per customer.

    Key `customer_id` (S); the item holds the report's fields, numbers as DynamoDB numbers and
    `report_date` as ISO text. `load_reports` fills the table from a file.
    """

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        if not table_name:
            raise ValueError("the credit reports table name is empty")
        self._client = dynamodb_client
        self._table_name = table_name

    def fetch(self, request: ReportRequest) -> CreditReport:
        try:
            found = self._client.get_item(
                TableName=self._table_name,
                Key={"customer_id": {"S": request.customer_id}},
                ConsistentRead=True,
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "unknown")
            logger.error(
                "Credit reports table unreadable", customer_id=request.customer_id, code=code
            )
            raise ProviderUnavailableError(
                f"the credit reports table cannot be read: {code}"
            ) from error

        item = found.get("Item")
        if item is None:
            logger.info("Credit reports table has no report", customer_id=request.customer_id)
            raise ReportNotFoundError(f"no credit report for customer {request.customer_id}")

        stored = {key: _deserializer.deserialize(value) for key, value in item.items()}
        try:
            report = CreditReport.model_validate(
                {key: stored[key] for key in CreditReport.model_fields if key in stored}
            )
        except ValidationError as error:
            wrong = ", ".join(_field_of(e["loc"]) for e in error.errors())
            logger.error(
                "Credit reports table holds an invalid report", customer_id=request.customer_id
            )
            raise ProviderUnavailableError(
                f"invalid answer from the credit reports table: fields {wrong}"
            ) from None

        logger.info(
            "Credit report read", customer_id=request.customer_id, reference=report.reference
        )
        return report


class _DecimalLoader(yaml.SafeLoader):
    """YAML with decimal numbers read as Decimal: a limit of 12345.10 stays exactly that."""


def _yaml_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = str(loader.construct_scalar(node))
    try:
        return Decimal(text)
    except InvalidOperation:
        # .inf and .nan: left to the model to refuse.
        return loader.construct_yaml_float(node)


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _yaml_decimal)


def _read_report_file(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text, parse_float=Decimal)
        return yaml.load(text, Loader=_DecimalLoader)  # noqa: S506 - a SafeLoader subclass
    except (ValueError, yaml.YAMLError) as error:
        raise CreditReportFileError(f"{path.name} is not valid JSON or YAML: {error}") from None


def _attribute_value(value: Any) -> Any:
    """What DynamoDB can hold: Decimal stays a number, dates become ISO text, None stays null."""
    if isinstance(value, Enum):
        return _attribute_value(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, list | tuple):
        return [_attribute_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _attribute_value(v) for k, v in value.items()}
    return value


def load_reports(path: Path, table_name: str, dynamodb_client: Any) -> int:
    """Load a YAML or JSON list of credit reports into the table; returns how many were loaded.

    Every entry is checked against the model first, so a file with one bad entry loads nothing
    and the error names that entry (counted from 1) and its field.
    """
    entries = _read_report_file(path)
    if not isinstance(entries, list):
        raise CreditReportFileError(f"{path.name} must hold a list of credit reports")

    reports: list[CreditReport] = []
    first_entry_of: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise CreditReportFileError(f"{path.name}: entry {number} is not a report object")
        label = f"entry {number}"
        if isinstance(entry.get("customer_id"), str):
            label = f"{label} (customer {entry['customer_id']})"
        try:
            report = CreditReport.model_validate(entry)
        except ValidationError as error:
            wrong = "; ".join(f"field {_field_of(e['loc'])}: {e['msg']}" for e in error.errors())
            raise CreditReportFileError(f"{path.name}: {label}: {wrong}") from None
        if report.customer_id in first_entry_of:
            raise CreditReportFileError(
                f"{path.name}: {label}: field customer_id: already used by entry "
                f"{first_entry_of[report.customer_id]}"
            )
        first_entry_of[report.customer_id] = number
        reports.append(report)

    # NOTE: the writes are not one transaction; a DynamoDB failure part-way leaves the reports
    # written so far. Loading the same file again puts the same items, so a rerun repairs it.
    for report in reports:
        item = {
            key: _serializer.serialize(_attribute_value(value))
            for key, value in report.model_dump(mode="python").items()
        }
        dynamodb_client.put_item(TableName=table_name, Item=item)

    logger.info("Credit reports loaded", table=table_name, count=len(reports))
    return len(reports)


def _api_key_from_secret(secret: str) -> str:
    """The credit provider's API key from its SecretString."""
    return api_key_from_secret(secret, "credit provider")


def provider_from_env(
    env: Mapping[str, str], dynamodb_client: Any, secrets_client: Any
) -> CreditReportProvider:
    """The reports table when `CREDIT_PROVIDER_URL` is empty, else the provider's API.

    The API adapter gets the process-wide breaker of its URL, so its state outlives one
    invocation.
    """
    url = env.get("CREDIT_PROVIDER_URL", "").strip()
    if not url:
        table = env.get("CREDIT_REPORTS_TABLE", "").strip()
        if not table:
            raise ValueError("CREDIT_REPORTS_TABLE is required when no CREDIT_PROVIDER_URL is set")
        return TableCreditProvider(dynamodb_client, table)

    secret_arn = env.get("CREDIT_PROVIDER_SECRET_ARN", "").strip()
    if not secret_arn:
        raise ValueError("CREDIT_PROVIDER_SECRET_ARN is required with CREDIT_PROVIDER_URL")
    secret = secrets_client.get_secret_value(SecretId=secret_arn).get("SecretString")
    if not isinstance(secret, str):
        raise ValueError("the credit provider secret has no SecretString")
    return HttpCreditProvider(url, _api_key_from_secret(secret), breaker=breaker_for(url))
