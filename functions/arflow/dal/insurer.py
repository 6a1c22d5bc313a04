"""The trade-credit insurer: overdue notifications and claims, to a local record or an insurer API.

Every submission carries a key derived from the invoice and the kind of submission, so a retried
step (a Lambda retry, a Step Functions retry, a redelivered event) is recorded once, both by the
local insurer and by an API that honours `Idempotency-Key`.
"""

import email.utils
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any, Protocol, runtime_checkable

import urllib3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pydantic import ValidationError

from arflow.dal.aws import api_key_from_secret as key_from_secret
from arflow.models.claim import (
    ClaimSubmission,
    OverdueNotification,
    SubmissionKind,
    SubmissionReceipt,
)
from arflow.timekeeping import utcnow

logger = Logger()

_LOCAL_PREFIX: dict[SubmissionKind, str] = {"notification": "LOCAL-N-", "claim": "LOCAL-C-"}
_PATHS: dict[SubmissionKind, str] = {"notification": "notifications", "claim": "claims"}
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_EXCERPT_BYTES = 300


class InsurerError(Exception):
    """A submission the insurer did not acknowledge."""


class InsurerRejectedError(InsurerError):
    """The insurer refused the submission, or answered something that is not a receipt.

    Not retried: the same submission would be refused again.
    """

    def __init__(self, message: str, status: int | None = None, body_excerpt: str = "") -> None:
        super().__init__(message if status is None else f"{message} (HTTP {status})")
        self.status = status
        self.body_excerpt = body_excerpt


class InsurerUnavailableError(InsurerError):
    """The insurer could not be reached, or stayed overloaded, for every attempt."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


@runtime_checkable
class InsurerAdapter(Protocol):
    def notify_overdue(self, n: OverdueNotification) -> SubmissionReceipt: ...

    def submit_claim(self, c: ClaimSubmission) -> SubmissionReceipt: ...


def _submission_digest(kind: SubmissionKind, invoice_id: str) -> str:
    return hashlib.sha256(f"{invoice_id}\x1f{kind}".encode()).hexdigest()


def local_reference(kind: SubmissionKind, invoice_id: str) -> str:
    """`LOCAL-N-<8 hex>` or `LOCAL-C-<8 hex>`: the same for every retry of one submission."""
    return _LOCAL_PREFIX[kind] + _submission_digest(kind, invoice_id)[:8].upper()


def idempotency_key(kind: SubmissionKind, invoice_id: str) -> str:
    """The `Idempotency-Key` of a submission: the full digest the local reference is cut from."""
    return f"{kind}-{_submission_digest(kind, invoice_id)}"


class LocalInsurer:
    """The insurer when none is configured: each submission is a row of the claims table."""

    def __init__(self, dynamodb_resource: Any, claims_table: str) -> None:
        self._table = dynamodb_resource.Table(claims_table)

    def notify_overdue(self, n: OverdueNotification) -> SubmissionReceipt:
        return self._record("notification", n, {"amount": n.amount_outstanding})

    def submit_claim(self, c: ClaimSubmission) -> SubmissionReceipt:
        return self._record("claim", c, {"amount": c.amount_claimed, "pack_key": c.pack_key})

    def _record(
        self,
        kind: SubmissionKind,
        submission: OverdueNotification | ClaimSubmission,
        amounts: dict[str, Any],
    ) -> SubmissionReceipt:
        reference = local_reference(kind, submission.invoice_id)
        receipt = SubmissionReceipt(
            insurer=submission.insurer, reference=reference, kind=kind, submitted_at=utcnow()
        )
        item = {
            "claim_id": reference,
            "kind": kind,
            "insurer": submission.insurer,
            "policy_number": submission.policy_number,
            "invoice_id": submission.invoice_id,
            "customer_id": submission.customer_id,
            "currency": submission.currency,
            "submitted_at": receipt.submitted_at.isoformat(),
            "status": receipt.status,
            "submission": submission.model_dump_json(),
            **amounts,
        }

        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(claim_id)")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return self._existing(kind, submission, reference)

        logger.info(
            "Insurer submission recorded",
            kind=kind,
            reference=reference,
            invoice_id=submission.invoice_id,
            customer_id=submission.customer_id,
        )
        return receipt

    def _existing(
        self,
        kind: SubmissionKind,
        submission: OverdueNotification | ClaimSubmission,
        reference: str,
    ) -> SubmissionReceipt:
        found = self._table.get_item(Key={"claim_id": reference}, ConsistentRead=True)
        existing = found.get("Item")

        # Eight hex digits can collide across invoices: answering with another invoice's receipt
        # would silently drop this submission.
        if existing is None or existing.get("invoice_id") != submission.invoice_id:
            raise InsurerRejectedError(f"reference {reference} already records another submission")

        logger.info(
            "Insurer submission already recorded",
            kind=kind,
            reference=reference,
            invoice_id=submission.invoice_id,
        )
        return SubmissionReceipt(
            insurer=str(existing.get("insurer", submission.insurer)),
            reference=reference,
            kind=kind,
            submitted_at=existing["submitted_at"],
            status=existing.get("status", "received"),
        )


class HttpInsurer:
    """An insurer's submission API: JSON over HTTPS, bearer key, answers with a `reference`.

    Connection errors, timeouts, 429 and 5xx are retried with exponential back-off and jitter
    (or the server's `Retry-After`, capped); any other answer that is not 2xx is final.

    `budget_seconds` bounds the whole call, waits included: a retry that could not finish inside
    it is not started, so the adapter reports the insurer unavailable (which the state machine
    retries later) before the Lambda timeout (30 s in template.yaml) cuts it off unexplained.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_seconds: float = 10.0,
        max_attempts: int = 4,
        backoff_seconds: float = 0.5,
        backoff_cap_seconds: float = 8.0,
        retry_after_cap_seconds: float = 10.0,
        budget_seconds: float = 25.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        url = urllib3.util.parse_url(base_url)
        # The key travels as a bearer token: plain HTTP only to this machine.
        if url.scheme != "https" and not (url.scheme == "http" and url.host in _LOOPBACK_HOSTS):
            raise ValueError("the insurer API must be an https URL")
        if not api_key:
            raise ValueError("the insurer API key is empty")
        if max_attempts < 1 or timeout_seconds <= 0:
            raise ValueError("max_attempts must be at least 1 and timeout_seconds positive")

        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds)
        self._max_attempts = max_attempts
        self._backoff_seconds = backoff_seconds
        self._backoff_cap_seconds = backoff_cap_seconds
        self._retry_after_cap_seconds = retry_after_cap_seconds
        self._timeout_seconds = timeout_seconds
        self._budget_seconds = budget_seconds
        self._sleep = sleep
        self._jitter = jitter
        self._pool = pool or urllib3.PoolManager(retries=False)

    def notify_overdue(self, n: OverdueNotification) -> SubmissionReceipt:
        return self._submit("notification", n)

    def submit_claim(self, c: ClaimSubmission) -> SubmissionReceipt:
        return self._submit("claim", c)

    def _submit(
        self, kind: SubmissionKind, submission: OverdueNotification | ClaimSubmission
    ) -> SubmissionReceipt:
        url = f"{self._base_url}/{_PATHS[kind]}"
        body = submission.model_dump_json().encode()
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": idempotency_key(kind, submission.invoice_id),
            "User-Agent": "arflow-insurer-adapter",
        }

        problem = ""
        started = time.monotonic()
        attempts = 0
        for attempt in range(1, self._max_attempts + 1):
            attempts = attempt
            # A POST may be retried after the insurer received it: the idempotency key makes
            # the second one a no-op on its side.
            try:
                response = self._pool.request(
                    "POST",
                    url,
                    body=body,
                    headers=headers,
                    timeout=self._timeout,
                    retries=False,
                    redirect=False,
                )
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError) as error:
                problem = type(error).__name__
                delay = self._backoff(attempt)
            except urllib3.exceptions.HTTPError as error:
                # TLS failures and malformed URLs: retrying changes nothing.
                raise InsurerUnavailableError(
                    f"the insurer API cannot be called: {type(error).__name__}", attempts=attempt
                ) from error
            else:
                status = response.status
                if 200 <= status < 300:
                    return self._receipt(kind, submission, status, response.data)
                if status != 429 and status < 500:
                    self._log_rejection(kind, submission, status)
                    raise InsurerRejectedError(
                        f"the insurer refused the {kind}", status, _excerpt(response.data)
                    )
                problem = f"HTTP {status}"
                retry_after = self._retry_after(response.headers.get("Retry-After"))
                delay = self._backoff(attempt) if retry_after is None else retry_after

            if attempt == self._max_attempts:
                break
            elapsed = time.monotonic() - started
            if elapsed + delay + self._timeout_seconds > self._budget_seconds:
                problem = f"{problem}; no time left for a retry"
                break
            logger.warning(
                "Insurer call failed, retrying",
                kind=kind,
                invoice_id=submission.invoice_id,
                attempt=attempt,
                problem=problem,
                delay_seconds=round(delay, 3),
            )
            self._sleep(delay)

        logger.error(
            "Insurer unavailable",
            kind=kind,
            invoice_id=submission.invoice_id,
            attempts=attempts,
            problem=problem,
        )
        raise InsurerUnavailableError(
            f"the insurer did not take the {kind} in {attempts} attempt(s): {problem}",
            attempts=attempts,
        )

    def _backoff(self, attempt: int) -> float:
        # Half fixed, half random: retries still spread out, and each wait still grows.
        ceiling = min(self._backoff_cap_seconds, self._backoff_seconds * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._jitter() * ceiling / 2

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

    def _receipt(
        self,
        kind: SubmissionKind,
        submission: OverdueNotification | ClaimSubmission,
        status: int,
        data: bytes,
    ) -> SubmissionReceipt:
        try:
            answer = json.loads(data)
        except ValueError:
            answer = None
        reference = answer.get("reference") if isinstance(answer, dict) else None
        if not isinstance(reference, str) or not reference.strip():
            self._log_rejection(kind, submission, status)
            raise InsurerRejectedError(
                "the insurer's answer has no reference", status, _excerpt(data)
            )

        try:
            receipt = SubmissionReceipt(
                insurer=submission.insurer,
                reference=reference.strip(),
                kind=kind,
                submitted_at=utcnow(),
                status=answer.get("status") or "received",
            )
        except ValidationError as error:
            self._log_rejection(kind, submission, status)
            raise InsurerRejectedError(
                "the insurer's answer is not a receipt", status, _excerpt(data)
            ) from error

        logger.info(
            "Insurer submission acknowledged",
            kind=kind,
            reference=receipt.reference,
            invoice_id=submission.invoice_id,
            customer_id=submission.customer_id,
        )
        return receipt

    @staticmethod
    def _log_rejection(
        kind: SubmissionKind, submission: OverdueNotification | ClaimSubmission, status: int
    ) -> None:
        # The body is not logged: an insurer may echo the buyer's details back.
        logger.error(
            "Insurer rejected submission",
            kind=kind,
            invoice_id=submission.invoice_id,
            status=status,
        )


def _excerpt(data: bytes) -> str:
    return data[:_EXCERPT_BYTES].decode("utf-8", errors="replace")


def api_key_from_secret(secret: str) -> str:
    """The insurer's API key from its SecretString."""
    return key_from_secret(secret, "insurer")


def insurer_from_env(
    env: Mapping[str, str], dynamodb_resource: Any, secrets_client: Any
) -> InsurerAdapter:
    """The local insurer when `INSURER_API_URL` is empty, else the configured insurer's API."""
    url = env.get("INSURER_API_URL", "").strip()
    if not url:
        table = env.get("CLAIMS_TABLE", "").strip()
        if not table:
            raise ValueError("CLAIMS_TABLE is required when no INSURER_API_URL is set")
        return LocalInsurer(dynamodb_resource, table)

    secret_arn = env.get("INSURER_SECRET_ARN", "").strip()
    if not secret_arn:
        raise ValueError("INSURER_SECRET_ARN is required with INSURER_API_URL")
    secret = secrets_client.get_secret_value(SecretId=secret_arn).get("SecretString")
    if not isinstance(secret, str):
        raise ValueError("the insurer secret has no SecretString")
    return HttpInsurer(url, api_key_from_secret(secret))
