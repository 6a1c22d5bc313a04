"""DynamoDB repositories. Every write that decides something is conditional on the stored state."""

import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel

from arflow.dal.aws import client
from arflow.models.credit import CreditReport
from arflow.models.invoice import Party
from arflow.models.policy import Policy
from arflow.models.records import (
    CustomerRecord,
    DecisionSummary,
    Dispute,
    HistoryEvent,
    HoldReason,
    InvoiceRecord,
    InvoiceStatus,
    Outcome,
    Pause,
    Promise,
    TimelineEvent,
)

# Events of one instant keep the order they were written in; the suffix keeps writers apart.
_sequence = itertools.count()
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _plain(value: Any) -> Any:
    """Python values DynamoDB can hold: Decimal stays, dates become ISO text, models become maps."""
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="python", exclude_none=True))
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def to_attributes(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in _plain(values).items()}


def from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_plain(v)) for k, v in values.items()}


def _json_ready(value: Any) -> Any:
    """Numbers in an event's detail come back from DynamoDB as Decimal: make them plain again."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def _event(item: dict[str, Any]) -> HistoryEvent:
    values = from_attributes(item)
    values["detail"] = _json_ready(values.get("detail", {}))
    return HistoryEvent.model_validate(values)


def _condition_failed(error: ClientError) -> bool:
    return bool(error.response["Error"]["Code"] == "ConditionalCheckFailedException")


class StageClaim(StrEnum):
    CLAIMED = "claimed"
    ALREADY_DONE = "already_done"
    NOT_OPEN = "not_open"
    PAUSED = "paused"  # disputed, promised, or the customer's dunning is paused


class DuplicateInvoiceError(Exception):
    def __init__(self, existing: InvoiceRecord) -> None:
        super().__init__(f"invoice {existing.invoice_id} is already stored")
        self.existing = existing


class InvoiceNotFoundError(LookupError):
    pass


class Invoices:
    def __init__(self, table: str, region: str, customers_table: str | None = None) -> None:
        self._table = table
        self._customers_table = customers_table
        self._db = client("dynamodb", region)

    def _item(self, record: InvoiceRecord) -> dict[str, Any]:
        values = record.model_dump(mode="python", exclude={"document"}, exclude_none=True)
        values["document_json"] = record.document.model_dump_json()
        return to_attributes(values)

    @staticmethod
    def _record(item: dict[str, Any]) -> InvoiceRecord:
        values = from_attributes(item)
        values["document"] = values.pop("document_json")
        from arflow.models.invoice import InvoiceDocument

        values["document"] = InvoiceDocument.model_validate_json(values["document"])
        return InvoiceRecord.model_validate(values)

    def put_new(self, record: InvoiceRecord) -> None:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._item(record),
                ConditionExpression="attribute_not_exists(invoice_id)",
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            existing = self.get(record.invoice_id)
            if existing is None:
                raise
            raise DuplicateInvoiceError(existing) from error

    def get(self, invoice_id: str) -> InvoiceRecord | None:
        response = self._db.get_item(
            TableName=self._table, Key=_values({"invoice_id": invoice_id}), ConsistentRead=True
        )
        item = response.get("Item")
        return self._record(item) if item else None

    def require(self, invoice_id: str) -> InvoiceRecord:
        record = self.get(invoice_id)
        if record is None:
            raise InvoiceNotFoundError(f"no invoice {invoice_id}")
        return record

    def for_customer(self, customer_id: str) -> list[InvoiceRecord]:
        records: list[InvoiceRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by_customer",
            "KeyConditionExpression": "customer_id = :c",
            "ExpressionAttributeValues": _values({":c": customer_id}),
        }
        while True:
            response = self._db.query(**kwargs)
            records.extend(self._record(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return records
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def scan(self) -> Iterator[InvoiceRecord]:
        kwargs: dict[str, Any] = {"TableName": self._table}
        while True:
            response = self._db.scan(**kwargs)
            for item in response.get("Items", []):
                yield self._record(item)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _update(
        self,
        invoice_id: str,
        update: str,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
        condition: str | None = None,
    ) -> InvoiceRecord | None:
        """One conditional update; None when the condition did not hold."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": _values({"invoice_id": invoice_id}),
            "UpdateExpression": update,
            "ReturnValues": "ALL_NEW",
        }
        if values:
            kwargs["ExpressionAttributeValues"] = _values(values)
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if condition:
            kwargs["ConditionExpression"] = condition
        try:
            response = self._db.update_item(**kwargs)
        except ClientError as error:
            if _condition_failed(error):
                return None
            raise
        return self._record(response["Attributes"])

    def claim_stage(
        self, invoice_id: str, customer_id: str, stage: str, at: datetime
    ) -> StageClaim:
        """Take a stage for this invoice, once, and only while nothing stands in its way.

        The invoice must be open, not disputed and not under a promise still running, and the
        customer's dunning not paused: all checked in the one transaction that takes the stage, so
        a payment, dispute or pause that lands meanwhile wins over the notice.
        """
        if self._customers_table is None:
            raise RuntimeError("claiming a stage needs the customers table")
        invoice_condition = (
            # A payment that zeroed the balance wins even before the invoice is marked settled.
            "attribute_exists(invoice_id) AND #st = :open AND balance > :zero "
            "AND attribute_not_exists(stages.#s) "
            "AND attribute_not_exists(dispute) "
            "AND (attribute_not_exists(promise) OR promise.resume_at <= :at)"
        )
        customer_condition = "attribute_not_exists(pause) OR pause.#until <= :at"
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": _values({"invoice_id": invoice_id}),
                            "UpdateExpression": "SET stages.#s = :at",
                            "ConditionExpression": invoice_condition,
                            "ExpressionAttributeNames": {"#s": stage, "#st": "status"},
                            "ExpressionAttributeValues": _values(
                                {":at": at, ":open": InvoiceStatus.OPEN, ":zero": Decimal(0)}
                            ),
                        }
                    },
                    {
                        "ConditionCheck": {
                            "TableName": self._customers_table,
                            "Key": _values({"customer_id": customer_id}),
                            "ConditionExpression": customer_condition,
                            "ExpressionAttributeNames": {"#until": "until"},
                            "ExpressionAttributeValues": _values({":at": at}),
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            current = self.require(invoice_id)
            if stage in current.stages:
                return StageClaim.ALREADY_DONE
            return StageClaim.NOT_OPEN if not current.is_open else StageClaim.PAUSED
        return StageClaim.CLAIMED

    def open_dispute(self, invoice_id: str, dispute: Dispute) -> bool:
        updated = self._update(
            invoice_id,
            "SET dispute = :d, paused = :why",
            {":d": dispute, ":why": "dispute", ":open": InvoiceStatus.OPEN},
            {"#st": "status"},
            "#st = :open AND attribute_not_exists(dispute)",
        )
        return updated is not None

    def resolve_dispute(self, invoice_id: str) -> Dispute | None:
        """End the dispute; returns it, or None if there was none to end."""
        current = self.get(invoice_id)
        if current is None or current.dispute is None:
            return None
        updated = self._update(
            invoice_id, "REMOVE dispute, paused", condition="attribute_exists(dispute)"
        )
        return current.dispute if updated is not None else None

    def record_promise(self, invoice_id: str, promise: Promise) -> bool:
        updated = self._update(
            invoice_id,
            "SET promise = :p",
            {":p": promise, ":open": InvoiceStatus.OPEN},
            {"#st": "status"},
            "#st = :open",
        )
        return updated is not None

    def clear_promise(self, invoice_id: str, promise: Promise) -> bool:
        """Remove this promise (not a newer one); True for the one caller that removed it."""
        updated = self._update(
            invoice_id,
            "REMOVE promise",
            {":r": promise.resume_at},
            condition="promise.resume_at = :r",
        )
        return updated is not None

    def mark_paused(self, invoice_id: str, why: str | None) -> bool:
        """Record why dunning is paused (None: resumed); True when that changed anything."""
        current = self.get(invoice_id)
        if current is None or current.paused == why:
            return False
        if why is None:
            # A dispute's pause is ended only by resolving the dispute, never by a stale plan.
            updated = self._update(
                invoice_id,
                "REMOVE paused",
                {":w": current.paused},
                condition="paused = :w AND attribute_not_exists(dispute)",
            )
        else:
            updated = self._update(
                invoice_id,
                "SET paused = :w",
                {":w": why, ":open": InvoiceStatus.OPEN},
                {"#st": "status"},
                "#st = :open",
            )
        return updated is not None

    def write_off(self, invoice_id: str, reason: str) -> InvoiceRecord | None:
        return self._update(
            invoice_id,
            "SET #st = :w, write_off_reason = :r",
            {":w": InvoiceStatus.WRITTEN_OFF, ":r": reason, ":open": InvoiceStatus.OPEN},
            {"#st": "status"},
            "#st = :open",
        )

    def release_stage(self, invoice_id: str, stage: str) -> None:
        """Give a stage back when its side effect failed, so that a retry can do it."""
        self._update(invoice_id, "REMOVE stages.#s", names={"#s": stage})

    def skip_stages(self, invoice_id: str, stages: list[str]) -> None:
        if stages:
            self._update(
                invoice_id,
                "SET skipped_stages = list_append(skipped_stages, :s)",
                {":s": stages},
            )

    def park(self, invoice_id: str, task_token: str) -> bool:
        """Keep the task token a payment will answer; False if the invoice is no longer open."""
        updated = self._update(
            invoice_id,
            "SET task_token = :t",
            {":t": task_token, ":open": InvoiceStatus.OPEN},
            {"#st": "status"},
            "#st = :open",
        )
        return updated is not None

    def take_token(self, invoice_id: str) -> str | None:
        """Remove and return the parked task token, if any (only one caller gets it)."""
        record = self.get(invoice_id)
        if record is None or record.task_token is None:
            return None
        updated = self._update(
            invoice_id,
            "REMOVE task_token",
            {":t": record.task_token},
            condition="task_token = :t",
        )
        return record.task_token if updated is not None else None

    def set_execution(self, invoice_id: str, execution_arn: str) -> None:
        self._update(invoice_id, "SET execution_arn = :e", {":e": execution_arn})

    def reduce_balance(self, invoice_id: str, field: str, amount: Decimal) -> InvoiceRecord | None:
        """Apply money received or credited; None if the invoice is not open any more."""
        return self._update(
            invoice_id,
            "SET #f = #f + :a, balance = balance - :a",
            {":a": amount, ":open": InvoiceStatus.OPEN},
            {"#f": field, "#st": "status"},
            "#st = :open",
        )

    def settle(self, invoice_id: str, status: InvoiceStatus, at: datetime) -> bool:
        """Close a fully paid or credited invoice; True for the one caller that closed it."""
        updated = self._update(
            invoice_id,
            "SET #st = :s, settled_at = :at",
            {":s": status, ":open": InvoiceStatus.OPEN, ":zero": Decimal(0), ":at": at},
            {"#st": "status"},
            "#st = :open AND balance <= :zero",
        )
        return updated is not None

    def mark_applied(self, invoice_id: str) -> None:
        self._update(invoice_id, "SET #st = :s", {":s": InvoiceStatus.APPLIED}, {"#st": "status"})

    def end(self, invoice_id: str, outcome: Outcome) -> bool:
        updated = self._update(
            invoice_id,
            "SET outcome = :o",
            {":o": outcome},
            condition="attribute_not_exists(outcome)",
        )
        return updated is not None


class Customers:
    def __init__(self, table: str, region: str) -> None:
        self._table = table
        self._db = client("dynamodb", region)

    def get(self, customer_id: str) -> CustomerRecord | None:
        response = self._db.get_item(
            TableName=self._table, Key=_values({"customer_id": customer_id}), ConsistentRead=True
        )
        item = response.get("Item")
        return CustomerRecord.model_validate(from_attributes(item)) if item else None

    def scan(self) -> Iterator[CustomerRecord]:
        kwargs: dict[str, Any] = {"TableName": self._table}
        while True:
            response = self._db.scan(**kwargs)
            for item in response.get("Items", []):
                yield CustomerRecord.model_validate(from_attributes(item))
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def record_buyer(
        self, party: Party, currency: str, now: datetime, policy: Policy
    ) -> CustomerRecord:
        """Create the customer on its first invoice (with the capped first limit) or refresh it."""

        updates = ["#n = :name", "first_seen = if_not_exists(first_seen, :now)"]
        values: dict[str, Any] = {":name": party.name, ":now": now}
        for field in ("email", "country", "locale", "industry_code", "vat_id"):
            value = getattr(party, field)
            if value is not None:
                updates.append(f"{field} = :{field}")
                values[f":{field}"] = value
        # No limit until the buyer is assessed: the credit check sets the first one.
        updates += [
            "credit_currency = if_not_exists(credit_currency, :cur)",
            "holds = if_not_exists(holds, :empty)",
            "credit_balance = if_not_exists(credit_balance, :empty)",
            "on_hold = if_not_exists(on_hold, :false)",
            "exposure = if_not_exists(exposure, :zero)",
            "exposure_invoices = if_not_exists(exposure_invoices, :empty)",
        ]
        values |= {
            ":cur": currency,
            ":empty": {},
            ":false": False,
            ":zero": Decimal(0),
        }
        response = self._db.update_item(
            TableName=self._table,
            Key=_values({"customer_id": party.id}),
            UpdateExpression="SET " + ", ".join(updates),
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues=_values(values),
            ReturnValues="ALL_NEW",
        )
        return CustomerRecord.model_validate(from_attributes(response["Attributes"]))

    def place_hold(self, customer_id: str, key: str, hold: HoldReason) -> bool:
        """Add a reason to the customer's hold; True if this reason is new."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_values({"customer_id": customer_id}),
                UpdateExpression="SET holds.#k = :h, on_hold = :true",
                ConditionExpression=(
                    "attribute_exists(customer_id) AND attribute_not_exists(holds.#k)"
                ),
                ExpressionAttributeNames={"#k": key},
                ExpressionAttributeValues=_values({":h": hold, ":true": True}),
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def release_hold(self, customer_id: str, key: str) -> tuple[bool, bool]:
        """Remove one reason. Returns (the reason was there, the hold is now released)."""
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=_values({"customer_id": customer_id}),
                UpdateExpression="REMOVE holds.#k",
                ConditionExpression="attribute_exists(holds.#k)",
                ExpressionAttributeNames={"#k": key},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _condition_failed(error):
                return False, False
            raise
        remaining = from_attributes(response["Attributes"]).get("holds") or {}
        if remaining:
            return True, False
        # Released only if no other reason arrived in between: the condition decides, not this read.
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_values({"customer_id": customer_id}),
                UpdateExpression="SET on_hold = :false",
                ConditionExpression="size(holds) = :zero AND on_hold = :true",
                ExpressionAttributeValues=_values({":false": False, ":true": True, ":zero": 0}),
            )
        except ClientError as error:
            if _condition_failed(error):
                return True, False
            raise
        return True, True

    def set_pause(self, customer_id: str, pause: Pause) -> bool:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_values({"customer_id": customer_id}),
                UpdateExpression="SET pause = :p",
                ConditionExpression="attribute_exists(customer_id)",
                ExpressionAttributeValues=_values({":p": pause}),
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def end_pause(self, customer_id: str) -> bool:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_values({"customer_id": customer_id}),
                UpdateExpression="REMOVE pause",
                ConditionExpression="attribute_exists(pause)",
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def reserve_exposure(
        self,
        customer_id: str,
        invoice_id: str,
        amount: Decimal,
        limit: Decimal | None,
        open_orders: Decimal = Decimal(0),
    ) -> bool:
        """Add an invoice to the customer's exposure; True if it fits within the limit.

        The check and the addition are one conditional write, so two invoices arriving together
        cannot both pass a limit that only one of them fits. Over the limit, the exposure is
        still counted (the invoice exists); only the answer differs.
        """
        names = {"#i": invoice_id}
        if limit is not None:
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key=_values({"customer_id": customer_id}),
                    UpdateExpression="SET exposure = exposure + :a, exposure_invoices.#i = :a",
                    ConditionExpression=(
                        "attribute_not_exists(exposure_invoices.#i) AND exposure <= :room"
                    ),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=_values(
                        {":a": amount, ":room": limit - amount - open_orders}
                    ),
                )
                return True
            except ClientError as error:
                if not _condition_failed(error):
                    raise
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_values({"customer_id": customer_id}),
                UpdateExpression="SET exposure = exposure + :a, exposure_invoices.#i = :a",
                ConditionExpression="attribute_not_exists(exposure_invoices.#i)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_values({":a": amount}),
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            # Counted already (a retried check): it fits if the total is within the limit.
            current = self.get(customer_id)
            return bool(limit is not None and current and current.exposure + open_orders <= limit)
        return False

    def set_open_orders(self, customer_id: str, amount: Decimal) -> bool:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_values({"customer_id": customer_id}),
                UpdateExpression="SET open_orders = :a",
                ConditionExpression="attribute_exists(customer_id)",
                ExpressionAttributeValues=_values({":a": amount}),
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def reduce_exposure(self, customer_id: str, invoice_id: str, amount: Decimal) -> None:
        """Money in, a credit or a write-off: the invoice counts for less, or nothing."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_values({"customer_id": customer_id}),
                UpdateExpression=(
                    "SET exposure = exposure - :a, exposure_invoices.#i = exposure_invoices.#i - :a"
                ),
                ConditionExpression="exposure_invoices.#i >= :a",
                ExpressionAttributeNames={"#i": invoice_id},
                ExpressionAttributeValues=_values({":a": amount}),
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise

    def set_credit(
        self,
        customer_id: str,
        limit: Decimal,
        currency: str,
        decision: DecisionSummary,
        review_due: date | None = None,
        payment_terms_days: int | None = None,
    ) -> None:
        updates = ["credit_limit = :l", "credit_currency = :c", "last_decision = :d"]
        values: dict[str, Any] = {":l": limit, ":c": currency, ":d": decision}
        if review_due is not None:
            updates.append("review_due = :r")
            values[":r"] = review_due
        if payment_terms_days is not None:
            updates.append("payment_terms_days = :t")
            values[":t"] = payment_terms_days
        self._db.update_item(
            TableName=self._table,
            Key=_values({"customer_id": customer_id}),
            UpdateExpression="SET " + ", ".join(updates),
            ExpressionAttributeValues=_values(values),
        )

    def set_report(self, customer_id: str, report: CreditReport) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=_values({"customer_id": customer_id}),
            UpdateExpression="SET credit_report = :r",
            ExpressionAttributeValues=_values({":r": report}),
        )

    def review_now(self, customer_id: str, today: date) -> None:
        """Bring the next limit review forward to today (after an overdue)."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_values({"customer_id": customer_id}),
                UpdateExpression="SET review_due = :t",
                ConditionExpression="review_due > :t",
                ExpressionAttributeValues=_values({":t": today}),
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise

    def due_for_review(self, today: date) -> list[CustomerRecord]:
        # NOTE: a filtered scan; a sparse index on review_due is the fix for large portfolios.
        found: list[CustomerRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "review_due <= :t",
            "ExpressionAttributeValues": _values({":t": today}),
        }
        while True:
            response = self._db.scan(**kwargs)
            found.extend(
                CustomerRecord.model_validate(from_attributes(i)) for i in response.get("Items", [])
            )
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def add_credit(self, customer_id: str, currency: str, amount: Decimal) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=_values({"customer_id": customer_id}),
            UpdateExpression="SET credit_balance.#c = if_not_exists(credit_balance.#c, :zero) + :a",
            ExpressionAttributeNames={"#c": currency},
            ExpressionAttributeValues=_values({":a": amount, ":zero": Decimal(0)}),
        )


class History:
    """The append-only event history of each invoice."""

    def __init__(self, table: str, region: str) -> None:
        self._table = table
        self._db = client("dynamodb", region)

    def append(
        self,
        invoice_id: str,
        event: TimelineEvent,
        at: datetime,
        detail: dict[str, Any] | None = None,
        customer_id: str | None = None,
        seq: str | None = None,
    ) -> HistoryEvent:
        entry = HistoryEvent(
            invoice_id=invoice_id,
            seq=seq or self.reserve(at),
            at=at,
            event=event,
            customer_id=customer_id,
            detail=detail or {},
        )
        self._db.put_item(
            TableName=self._table,
            Item=to_attributes(entry.model_dump(mode="python", exclude_none=True)),
            ConditionExpression="attribute_not_exists(seq)",
        )
        return entry

    @staticmethod
    def reserve(at: datetime) -> str:
        """A place in the history, taken when something is decided and written once it is done.

        Events of one instant sort by these places, so a notice decided before a payment stays
        before it even if the payment's event is written while the notice is being sent.
        """
        return f"{at.strftime('%Y%m%dT%H%M%S.%f')}#{next(_sequence):010d}#{uuid.uuid4().hex[:8]}"

    def for_invoice(self, invoice_id: str) -> list[HistoryEvent]:
        events: list[HistoryEvent] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "invoice_id = :i",
            "ExpressionAttributeValues": _values({":i": invoice_id}),
            "ConsistentRead": True,
        }
        while True:
            response = self._db.query(**kwargs)
            events.extend(_event(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return events
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def scan(self) -> list[HistoryEvent]:
        events: list[HistoryEvent] = []
        kwargs: dict[str, Any] = {"TableName": self._table}
        while True:
            response = self._db.scan(**kwargs)
            events.extend(_event(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return sorted(events, key=lambda e: (e.at, e.seq))
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


class Payments:
    def __init__(self, table: str, region: str) -> None:
        self._table = table
        self._db = client("dynamodb", region)

    def record(self, payment_id: str, values: dict[str, Any]) -> bool:
        """Store a payment once; False when this payment id was seen before."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_attributes({"payment_id": payment_id, **values}),
                ConditionExpression="attribute_not_exists(payment_id)",
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def for_invoice(self, invoice_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by_invoice",
            "KeyConditionExpression": "invoice_id = :i",
            "ExpressionAttributeValues": _values({":i": invoice_id}),
        }
        while True:
            response = self._db.query(**kwargs)
            items.extend(from_attributes(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def take_held(self, payment_id: str) -> bool:
        """Move a payment held for its invoice to applied; True for the one caller that did."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_values({"payment_id": payment_id}),
                UpdateExpression="SET #st = :applied",
                ConditionExpression="#st = :held",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues=_values({":applied": "applied", ":held": "held"}),
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True


class CreditDecisions:
    """The log of credit decisions, reviews and overrides, each with its inputs and reasons."""

    def __init__(self, table: str, region: str) -> None:
        self._table = table
        self._db = client("dynamodb", region)

    def record(self, customer_id: str, kind: str, at: datetime, body: dict[str, Any]) -> str:
        key = f"{at.strftime('%Y%m%dT%H%M%S.%f')}#{next(_sequence):010d}#{uuid.uuid4().hex[:8]}"
        self._db.put_item(
            TableName=self._table,
            Item=to_attributes(
                {
                    "customer_id": customer_id,
                    "decided": key,
                    "kind": kind,
                    "at": at,
                    "body_json": json.dumps(body, default=str, sort_keys=True),
                }
            ),
        )
        return key

    def for_customer(self, customer_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "customer_id = :c",
            "ExpressionAttributeValues": _values({":c": customer_id}),
        }
        while True:
            response = self._db.query(**kwargs)
            for raw in response.get("Items", []):
                item = from_attributes(raw)
                item["body"] = json.loads(item.pop("body_json"))
                items.append(item)
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
