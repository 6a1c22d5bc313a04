"""What a run sends: documents from files, folders or scenarios, and money events at set times."""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from arflow.logic.documents import parse_document
from arflow.logic.documents.errors import DocumentError
from arflow.logic.documents.stripe import parse_stripe_event, wrap_stripe_object

DOCUMENT_SUFFIXES = {".xml", ".json"}
SCENARIO_SUFFIXES = {".yaml", ".yml"}
# Documents go out on their issue day, in the morning (UTC) of that day.
DELIVERY_TIME = time(8, 0, tzinfo=UTC)

Channel = Literal["invoices", "stripe"]


class _TextDates(yaml.SafeLoader):
    """Reads dates as the text they are written as: they go on to JSON bodies and our parsers."""


_TextDates.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class ScenarioError(ValueError):
    """A scenario file that cannot be run, with where and why."""


@dataclass
class Delivery:
    """One request a sender makes: a document to the ingest webhook."""

    source: str
    channel: Channel
    body: bytes
    content_type: str
    at: datetime | None
    key: str | None = None  # the scenario's name for the invoice, for events that refer to it
    meta: dict[str, Any] = field(default_factory=dict)


_RELATIVE = re.compile(r"^due\s*([+-])\s*(\d+)$")


class ScenarioEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: str = Field(description="ISO date or date-time, or due+N / due-N")
    kind: Literal[
        "payment",
        "credit_note",
        "dispute",
        "dispute_resolved",
        "promise",
        "write_off",
        "pause",
        "pause_end",
    ]
    invoice: str = Field(description="The invoice number (or the document's key in the scenario)")
    amount: Decimal | Literal["balance"] = "balance"
    currency: str | None = None
    amount_in_invoice_currency: Decimal | None = None
    payment_id: str | None = None
    reason: str | None = Field(default=None, description="dispute, write_off, pause")
    resolution: str | None = Field(default=None, description="dispute_resolved")
    pay_by: str | None = Field(default=None, description="promise: ISO date or due+N")
    until: str | None = Field(default=None, description="pause: ISO date or due+N")
    number: str | None = Field(default=None, description="credit_note: its own number")

    @field_validator("at", "pay_by", "until")
    @classmethod
    def _when(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if _RELATIVE.match(value.strip()):
            return value.strip()
        try:
            datetime.fromisoformat(value)
        except ValueError as error:
            raise ValueError(f"at must be an ISO date or due+N / due-N, not {value!r}") from error
        return value

    @model_validator(mode="after")
    def _what_each_kind_needs(self) -> "ScenarioEvent":
        needs = {
            "dispute": "reason",
            "dispute_resolved": "resolution",
            "promise": "pay_by",
            "write_off": "reason",
            "pause": "until",
        }
        field = needs.get(self.kind)
        if field is not None and getattr(self, field) is None:
            raise ValueError(f"a {self.kind} event needs {field}")
        if self.kind == "credit_note" and self.amount == "balance" and self.number is None:
            raise ValueError("a credit_note event needs its number (and amount, or the balance)")
        return self

    def resolve(self, due_date: date) -> datetime:
        return when(self.at, due_date, time(12, 0))


def when(value: str, due_date: date, default_time: time) -> datetime:
    """An ISO date or date-time, or a day relative to the due date (due+N, due-N)."""
    relative = _RELATIVE.match(value.strip())
    if relative:
        days = int(relative.group(2)) * (1 if relative.group(1) == "+" else -1)
        return datetime.combine(due_date + timedelta(days=days), default_time, tzinfo=UTC)
    return _instant(value, default_time)


class ScenarioDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str | None = None
    invoice: dict[str, Any] | None = None
    at: str | None = None
    key: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "ScenarioDocument":
        if (self.file is None) == (self.invoice is None):
            raise ValueError("each document needs exactly one of file or invoice")
        return self


class ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    start: str | None = None
    policy: str | None = None
    credit_reports: str | None = Field(
        default=None, description="A YAML or JSON file of credit reports, for the local provider"
    )
    outlook: str | None = Field(
        default=None, description="An industry and country outlook table (CSV)"
    )
    documents: list[ScenarioDocument] = Field(min_length=1)
    events: list[ScenarioEvent] = Field(default_factory=list)


@dataclass
class Plan:
    """Everything a run will send, and with which policy."""

    title: str
    deliveries: list[Delivery]
    events: list[ScenarioEvent]
    start: datetime | None = None
    policy_path: Path | None = None
    credit_reports: list[Path] = field(default_factory=list)
    outlook_path: Path | None = None


def _instant(value: str, default_time: time) -> datetime:
    parsed = datetime.fromisoformat(value)
    if len(value) <= 10:
        parsed = datetime.combine(parsed.date(), default_time)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def plan_inputs(inputs: list[Path]) -> Plan:
    deliveries: list[Delivery] = []
    events: list[ScenarioEvent] = []
    start: datetime | None = None
    policy: Path | None = None
    outlook: Path | None = None
    reports: list[Path] = []
    titles: list[str] = []
    for path in inputs:
        if not path.exists():
            raise ScenarioError(f"{path}: no such file or folder")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in DOCUMENT_SUFFIXES)
            deliveries += [document_delivery(p, p.read_bytes()) for p in files]
            titles.append(path.name)
        elif path.suffix.lower() in SCENARIO_SUFFIXES:
            scenario = load_scenario(path)
            deliveries += scenario.deliveries
            events += scenario.events
            start = start or scenario.start
            policy = policy or scenario.policy_path
            outlook = outlook or scenario.outlook_path
            reports += scenario.credit_reports
            titles.append(scenario.title)
        else:
            deliveries.append(document_delivery(path, path.read_bytes()))
            titles.append(path.name)
    return Plan(" + ".join(titles), deliveries, events, start, policy, reports, outlook)


def load_scenario(path: Path) -> Plan:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_TextDates)  # noqa: S506
        scenario = ScenarioFile.model_validate(raw)
    except yaml.YAMLError as error:
        raise ScenarioError(f"{path}: not valid YAML: {error}") from error
    except ValueError as error:
        raise ScenarioError(f"{path}: {error}") from error

    base = path.parent
    deliveries = []
    for number, entry in enumerate(scenario.documents, start=1):
        if entry.file is not None:
            file = base / entry.file
            if not file.exists():
                raise ScenarioError(f"{path}: document {number}: no file {file}")
            delivery = document_delivery(file, file.read_bytes())
        else:
            body = json.dumps(entry.invoice, indent=2).encode()
            delivery = document_delivery(Path(f"{path.name}#document-{number}.json"), body)
        if entry.at is not None:
            delivery.at = _instant(entry.at, DELIVERY_TIME.replace(tzinfo=None))
        delivery.key = entry.key
        deliveries.append(delivery)
    return Plan(
        scenario.title or path.stem,
        deliveries,
        scenario.events,
        _instant(scenario.start, time(0, 0)) if scenario.start else None,
        (base / scenario.policy) if scenario.policy else None,
        [base / scenario.credit_reports] if scenario.credit_reports else [],
        (base / scenario.outlook) if scenario.outlook else None,
    )


def document_delivery(path: Path, body: bytes) -> Delivery:
    """How a sender would deliver this file, and when (its issue date, if it can be read)."""
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and "object" in data:
            return _stripe_delivery(path, data)
        return _canonical_delivery(path, body, "application/json")
    return _canonical_delivery(path, body, "application/xml")


def _canonical_delivery(path: Path, body: bytes, content_type: str) -> Delivery:
    at = None
    meta: dict[str, Any] = {}
    try:
        document = parse_document(body, content_type)
        at = datetime.combine(document.issue_date, DELIVERY_TIME)
        meta = {
            "invoice_number": document.invoice_number,
            "supplier_id": document.supplier.id,
            "is_credit": document.is_credit,
        }
    except DocumentError:
        pass  # the webhook will say what is wrong with it
    return Delivery(str(path), "invoices", body, content_type, at, meta=meta)


def _stripe_delivery(path: Path, data: dict[str, Any]) -> Delivery:
    # Stripe delivers events; a bare object is sent in the envelope Stripe would put it in.
    created = int(data.get("created") or 0)
    try:
        event = wrap_stripe_object(data, created)
    except DocumentError:
        event = data  # nothing Stripe would wrap it in: sent as it is, for the webhook to refuse
    body = json.dumps(event, indent=2).encode()
    at = datetime.fromtimestamp(created, UTC) if created else None
    meta: dict[str, Any] = {}
    try:
        parsed = parse_stripe_event(body)
        if parsed.document is not None:
            meta = {
                "invoice_number": parsed.document.invoice_number,
                "supplier_id": parsed.document.supplier.id,
                "is_credit": parsed.document.is_credit,
            }
    except DocumentError:
        pass
    return Delivery(str(path), "stripe", body, "application/json", at, meta=meta)
