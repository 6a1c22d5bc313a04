"""The run report: one self-contained HTML page of a simulated run, for a credit controller.

The simulator hands over a `ReportData` (invoices, their timelines, customers and their order holds,
rejected documents, e-mails sent). This module shapes it into views (dates, days from the due date,
labels, money) and renders the Jinja2 template in `report_templates/report.html`, autoescaped, so
the template only places what is already decided here.
"""

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from babel.numbers import format_currency
from jinja2 import Environment, StrictUndefined
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MONEY_LOCALE = "en_GB"
_CODE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)+")
# Beside this module rather than through importlib.resources: arflow_local is a namespace package,
# and Python 3.11's resource reader cannot open one installed in editable mode.
TEMPLATE = Path(__file__).with_name("report_templates") / "report.html"


# Input models: what the simulator hands over.


class InvoiceRow(BaseModel):
    """One invoice as it stands at the end of the run."""

    model_config = ConfigDict(extra="forbid")

    invoice_id: str
    invoice_number: str
    supplier_name: str
    customer_id: str
    customer_name: str
    currency: str
    total_amount: Decimal
    balance: Decimal = Field(description="What is still open at the end of the run")
    issue_date: date
    due_date: date
    due_date_source: str = Field(
        description="invoice, payment_terms, customer_terms or policy_default"
    )
    status: str = Field(description="open, paid, credited, ...")
    outcome: str | None = Field(default=None, description="PAID, CLAIMED, ESCALATED, FAILED, ...")
    insured: bool
    source: str = Field(description="canonical, peppol or stripe")
    source_file: str | None = None
    balance_history: list[tuple[AwareDatetime, Decimal]] = Field(
        default_factory=list, description="The open balance from each instant it changed"
    )


class TimelineEntry(BaseModel):
    """One thing that happened to an invoice, at a virtual instant."""

    model_config = ConfigDict(extra="forbid")

    invoice_id: str | None = Field(
        default=None, description="None for an event no invoice was created for"
    )
    at: AwareDatetime
    event: str
    detail: dict[str, Any] = Field(default_factory=dict)


class FieldProblem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    message: str


class Rejection(BaseModel):
    """A document the webhooks refused, with the answer its sender got."""

    model_config = ConfigDict(extra="forbid")

    source_file: str
    at: AwareDatetime
    status: int = Field(description="HTTP status code of the answer")
    error: str
    message: str
    problems: list[FieldProblem] = Field(default_factory=list)


class HoldReason(BaseModel):
    """One reason a customer's orders are held now."""

    model_config = ConfigDict(extra="forbid")

    reason: str
    invoice_id: str | None = None
    placed_at: AwareDatetime


class HoldChange(BaseModel):
    """One placement or release of an order hold."""

    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime
    event: Literal["placed", "released"]
    reason: str
    invoice_id: str | None = None


class CreditPoint(BaseModel):
    """The customer's limit and exposure from one instant on."""

    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime
    credit_limit: Decimal | None
    exposure: Decimal


class CustomerRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str
    name: str
    on_hold: bool
    hold_reasons: list[HoldReason] = Field(default_factory=list)
    credit_limit: Decimal | None = None
    exposure: Decimal | None = None
    currency: str | None = None
    hold_history: list[HoldChange] = Field(default_factory=list)
    grade: str | None = None
    decision: str | None = None
    credit_history: list[CreditPoint] = Field(
        default_factory=list, description="Limit and exposure over the run, in `currency`"
    )


class EmailRow(BaseModel):
    """One e-mail written to the outbox; `file` is relative to the report's folder."""

    model_config = ConfigDict(extra="forbid")

    file: str
    invoice_id: str | None = None
    kind: str
    to: str
    subject: str
    language: str
    sent_at: AwareDatetime


class ReportData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str
    generated_at: AwareDatetime
    start: AwareDatetime
    end: AwareDatetime
    policy_version: str
    milestones: dict[str, int] = Field(description="Dunning stage to days from the due date")
    invoices: list[InvoiceRow] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    rejections: list[Rejection] = Field(default_factory=list)
    customers: list[CustomerRow] = Field(default_factory=list)
    emails: list[EmailRow] = Field(default_factory=list)


# Wording: how events, stages and outcomes read on the page.

EVENT_LABELS: dict[str, str] = {
    "invoice_received": "Invoice received",
    "invoice_rejected": "Document rejected",
    "credit_applied": "Credit note applied",
    "credit_checked": "Credit checked",
    "reminder_sent": "Payment reminder sent",
    "overdue_notice_sent": "Friendly overdue notice sent",
    "formal_notice_sent": "Formal dunning letter sent",
    "order_hold_placed": "Order hold placed",
    "order_hold_released": "Order hold released",
    "finance_escalated": "Escalated to finance and legal",
    "insurer_notified": "Credit insurer notified",
    "claim_submitted": "Insurance claim submitted",
    "payment_received": "Payment received",
    "invoice_settled": "Invoice settled",
    "lifecycle_ended": "Lifecycle ended",
}

# The tone colours an event: how far the invoice has gone down the collections path.
EVENT_TONES: dict[str, str] = {
    "invoice_received": "info",
    "credit_checked": "info",
    "credit_applied": "good",
    "reminder_sent": "notice",
    "overdue_notice_sent": "notice",
    "formal_notice_sent": "warn",
    "order_hold_placed": "warn",
    "finance_escalated": "danger",
    "insurer_notified": "danger",
    "claim_submitted": "danger",
    "invoice_rejected": "danger",
    "payment_received": "good",
    "invoice_settled": "good",
    "order_hold_released": "good",
    "lifecycle_ended": "end",
}

# Short names for the ticks under an invoice's track, where space is scarce.
TRACK_LABELS: dict[str, str] = {
    "reminder": "Reminder",
    "overdue_notice": "Overdue notice",
    "formal_notice": "Formal letter",
    "escalation": "Escalation",
    "claim": "Claim",
}

MILESTONE_LABELS: dict[str, str] = {
    "reminder": "Reminder",
    "overdue_notice": "Overdue notice",
    "formal_notice": "Formal letter and order hold",
    "escalation": "Escalation",
    "claim": "Insurance claim",
}

OUTCOME_TONES: dict[str, str] = {
    "PAID": "good",
    "CREDITED": "good",
    "ESCALATED": "warn",
    "CLAIMED": "danger",
    "FAILED": "danger",
}

# Detail keys shown first and under a readable name; any other key follows under its own name.
DETAIL_LABELS: dict[str, str] = {
    "recipient_language": "Language",
    "language": "Language",
    "reason": "Reason",
    "outcome": "Outcome",
    "stage": "Stage",
    "recipient": "To",
    "file": "File",
}
# Shown elsewhere on the event (the amount) or not worth a controller's attention.
HIDDEN_DETAIL_KEYS = frozenset({"amount", "currency", "invoice_id"})
# Detail values that are amounts in the event's currency.
MONEY_DETAIL_KEYS = frozenset({"exposure", "credit_limit", "balance", "remaining", "indemnity"})
# Detail values that are machine codes (`formal_notice`, `within_limit`) and read better as words.
CODE_DETAIL_KEYS = frozenset({"reason", "decision", "stage", "kind"})


def humanise(name: str) -> str:
    """`order_hold_placed` reads as "Order hold placed" when no label is known for it."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def readable_code(value: str) -> str:
    """A code such as `formal_notice` reads as "Formal notice"; a sentence is left as written."""
    return humanise(value) if _CODE.fullmatch(value) else value


def event_label(event: str) -> str:
    return EVENT_LABELS.get(event, humanise(event))


def money(amount: Decimal, currency: str) -> str:
    return str(format_currency(amount, currency, locale=MONEY_LOCALE))


def iso_date(instant: datetime) -> str:
    """The UTC calendar date of an instant; every date on the page is read in UTC."""
    return instant.astimezone(UTC).date().isoformat()


def iso_minute(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def relative_day(days: int) -> str:
    """Days from the due date as the policy writes them: due-5, due+0, due+15."""
    return f"due{days:+d}"


def relative_link(path: str) -> str:
    """A link to a file next to the report.

    Quoting keeps every character of the path, and turns a colon into %3A, so a file name such as
    `javascript:...` stays a relative path and never becomes a URL scheme.
    """
    return quote(path.replace("\\", "/").lstrip("/"), safe="/")


# Views: what the template places.

LabelAlign = Literal["start", "middle", "end"]


@dataclass(frozen=True)
class DetailView:
    label: str
    value: str


@dataclass(frozen=True)
class EventView:
    event: str
    label: str
    tone: str
    date: str
    time: str
    relative: str | None
    amount: str | None
    details: list[DetailView]


@dataclass(frozen=True)
class TrackMark:
    """An event on an invoice's horizontal track; `left` is a percentage of the track's width."""

    left: float
    label: str
    tone: str
    lane: int


@dataclass(frozen=True)
class TrackLabel:
    """A tick under the track: the issue date, the due date or a dunning stage."""

    left: float
    name: str
    relative: str
    tone: str
    align: LabelAlign
    lane: int


@dataclass(frozen=True)
class Track:
    marks: list[TrackMark]
    labels: list[TrackLabel]
    mark_lanes: int
    label_lanes: int


@dataclass(frozen=True)
class EmailView:
    href: str
    file: str
    kind: str
    to: str
    subject: str
    language: str
    sent: str


@dataclass(frozen=True)
class InvoiceView:
    row: InvoiceRow
    anchor: str
    total: str
    balance: str
    outcome_tone: str
    events: list[EventView]
    emails: list[EmailView]
    track: Track | None


@dataclass(frozen=True)
class HoldView:
    reason: str
    invoice: str | None
    invoice_anchor: str | None
    at: str
    event: str


@dataclass(frozen=True)
class CustomerView:
    row: CustomerRow
    credit_limit: str | None
    exposure: str | None
    utilisation: float | None
    used_percent: str | None
    over_limit: bool
    reasons: list[HoldView]
    history: list[HoldView]
    chart: "CreditChart | None" = None


@dataclass(frozen=True)
class CreditChart:
    """Limit and exposure as step lines over the run: SVG points in a 600 x 120 box."""

    limit_points: str
    exposure_points: str
    top: str
    start: str
    end: str


def _steps(
    values: list[tuple[datetime, Decimal]], start: datetime, end: datetime, top: Decimal
) -> str:
    span = max((end - start).total_seconds(), 1.0)
    points: list[str] = []
    previous_y: float | None = None
    for at, value in values:
        x = 600 * max(min((at - start).total_seconds() / span, 1.0), 0.0)
        y = 120 - float(value / top) * 110 if top else 120.0
        if previous_y is not None:
            points.append(f"{x:.1f},{previous_y:.1f}")
        points.append(f"{x:.1f},{y:.1f}")
        previous_y = y
    if previous_y is not None:
        points.append(f"600.0,{previous_y:.1f}")
    return " ".join(points)


def _chart(customer: CustomerRow, start: datetime, end: datetime) -> CreditChart | None:
    history = sorted(customer.credit_history, key=lambda point: point.at)
    if len(history) < 2 or customer.currency is None:
        return None
    limits = [(p.at, p.credit_limit) for p in history if p.credit_limit is not None]
    top = max([p.exposure for p in history] + [limit for _, limit in limits] + [Decimal(1)])
    return CreditChart(
        limit_points=_steps(limits, start, end, top),
        exposure_points=_steps([(p.at, p.exposure) for p in history], start, end, top),
        top=money(top, customer.currency),
        start=iso_date(start),
        end=iso_date(end),
    )


@dataclass(frozen=True)
class RejectionView:
    row: Rejection
    at: str


@dataclass(frozen=True)
class MilestoneView:
    label: str
    relative: str


@dataclass(frozen=True)
class Totals:
    invoices: int
    paid: int
    open: int
    claimed: int
    rejected: int
    outstanding: list[str] = field(default_factory=list)


def _amount_of(detail: dict[str, Any], currency: str) -> str | None:
    raw = detail.get("amount")
    if raw is None:
        return None
    code = str(detail.get("currency") or currency)
    try:
        return money(Decimal(str(raw)), code)
    except (InvalidOperation, ValueError):
        # An amount that is not a number is still shown, as written, rather than dropped.
        return f"{raw} {code}"


def _detail_value(key: str, value: Any, currency: str) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key in MONEY_DETAIL_KEYS and currency:
        try:
            return money(Decimal(str(value)), currency)
        except (InvalidOperation, ValueError):
            return str(value)
    if key in CODE_DETAIL_KEYS and isinstance(value, str):
        return readable_code(value)
    return str(value)


def _details_of(detail: dict[str, Any], currency: str) -> list[DetailView]:
    known = [key for key in DETAIL_LABELS if key in detail]
    others = sorted(key for key in detail if key not in DETAIL_LABELS)
    return [
        DetailView(DETAIL_LABELS.get(key, humanise(key)), _detail_value(key, detail[key], currency))
        for key in known + others
        if key not in HIDDEN_DETAIL_KEYS and detail[key] not in (None, "", [], {})
    ]


def _event_view(entry: TimelineEntry, invoice: InvoiceRow | None) -> EventView:
    # NOTE: days from the due date are counted between UTC calendar dates; the due date is the
    # customer's local date, so an event late in the evening east of UTC can read one day early.
    at = entry.at.astimezone(UTC)
    relative = None if invoice is None else relative_day((at.date() - invoice.due_date).days)
    currency = invoice.currency if invoice is not None else ""
    return EventView(
        event=entry.event,
        label=event_label(entry.event),
        tone=EVENT_TONES.get(entry.event, "info"),
        date=at.date().isoformat(),
        time=at.strftime("%H:%M"),
        relative=relative,
        amount=_amount_of(entry.detail, currency),
        details=_details_of(entry.detail, str(entry.detail.get("currency") or currency)),
    )


# The track's labels are placed before the browser lays them out, so their widths are estimated
# (11px labels of about 6.3px a character) against the narrowest the track is read at: about
# 680px on a printed A4 page. On screen the same labels then have room to spare.
TRACK_WIDTH_PX = 680
LABEL_CHAR_PX = 6.3
LABEL_GAP_PX = 10
MARK_WIDTH_PX = 14


def _percent(pixels: float) -> float:
    return pixels * 100 / TRACK_WIDTH_PX


def _lanes(spans: list[tuple[float, float]]) -> list[int]:
    """Stack what would overlap: each span, in order, takes the lowest lane still free where it
    starts, so marks on one day or labels a few days apart sit above one another."""
    ends: list[float] = []
    lanes: list[int] = []
    for start, end in spans:
        for lane, lane_end in enumerate(ends):
            if start >= lane_end:
                ends[lane] = end
                lanes.append(lane)
                break
        else:
            ends.append(end)
            lanes.append(len(ends) - 1)
    return lanes


def _label_span(left: float, text: str) -> tuple[LabelAlign, tuple[float, float]]:
    """Where a label sits around its tick: centred, or kept inside the track at either end."""
    width = _percent(len(text) * LABEL_CHAR_PX + LABEL_GAP_PX)
    if left - width / 2 < 0:
        return "start", (left, left + width)
    if left + width / 2 > 100:
        return "end", (left - width, left)
    return "middle", (left - width / 2, left + width / 2)


def _track(invoice: InvoiceRow, entries: list[TimelineEntry], milestones: dict[str, int]) -> Track:
    # The track counts days from the due date, from the issue date (or an earlier event) to the
    # last event or dunning stage, so every card reads against the policy's own offsets.
    due = invoice.due_date
    event_days = [(entry.at.astimezone(UTC).date() - due).days for entry in entries]
    issued = (invoice.issue_date - due).days
    first = min([issued, *event_days, *milestones.values(), 0])
    last = max([*event_days, *milestones.values(), 0])
    span = max(last - first, 1)

    def left(day: int) -> float:
        return round((day - first) * 100 / span, 2)

    # Ticks: the issue and due dates, and each dunning stage, faded while the invoice has not
    # reached it. Each is (day, name, what follows the name, tone).
    reached = max(event_days, default=first)
    points = [
        (issued, "Issued", invoice.issue_date.isoformat(), "reached"),
        (0, "Due", due.isoformat(), "due"),
        *(
            (
                days,
                TRACK_LABELS.get(stage, humanise(stage)),
                relative_day(days),
                "reached" if days <= reached else "ahead",
            )
            for stage, days in milestones.items()
        ),
    ]
    points.sort(key=lambda point: point[0])
    ticks = [(name, relative, tone, left(day)) for day, name, relative, tone in points]
    spans = [_label_span(position, f"{name} {relative}") for name, relative, _, position in ticks]
    label_lanes = _lanes([span_ for _, span_ in spans])
    labels = [
        TrackLabel(left=position, name=name, relative=relative, tone=tone, align=align, lane=lane)
        for (name, relative, tone, position), (align, _), lane in zip(
            ticks, spans, label_lanes, strict=True
        )
    ]

    half_mark = _percent(MARK_WIDTH_PX) / 2
    positions = [left(day) for day in event_days]
    mark_lanes = _lanes([(position - half_mark, position + half_mark) for position in positions])
    marks = [
        TrackMark(
            left=position,
            label=f"{iso_date(entry.at)} ({relative_day(day)}): {event_label(entry.event)}",
            tone=EVENT_TONES.get(entry.event, "info"),
            lane=lane,
        )
        for entry, day, position, lane in zip(
            entries, event_days, positions, mark_lanes, strict=True
        )
    ]
    return Track(
        marks=marks,
        labels=labels,
        mark_lanes=max(mark_lanes, default=0) + 1,
        label_lanes=max(label_lanes, default=0) + 1,
    )


def _invoice_view(
    invoice: InvoiceRow,
    entries: list[TimelineEntry],
    emails: list[EmailRow],
    milestones: dict[str, int],
) -> InvoiceView:
    return InvoiceView(
        row=invoice,
        anchor=invoice_anchor(invoice.invoice_id),
        total=money(invoice.total_amount, invoice.currency),
        balance=money(invoice.balance, invoice.currency),
        outcome_tone=OUTCOME_TONES.get(invoice.outcome or "", "neutral"),
        events=[_event_view(entry, invoice) for entry in entries],
        emails=_email_views(emails),
        track=_track(invoice, entries, milestones) if entries else None,
    )


def _email_views(emails: list[EmailRow]) -> list[EmailView]:
    return [
        EmailView(
            href=relative_link(email.file),
            file=email.file,
            kind=humanise(email.kind),
            to=email.to,
            subject=email.subject,
            language=email.language,
            sent=iso_minute(email.sent_at),
        )
        for email in sorted(emails, key=lambda email: email.sent_at)
    ]


def invoice_anchor(invoice_id: str) -> str:
    return "invoice-" + quote(invoice_id, safe="")


def _hold_view(
    reason: str, invoice_id: str | None, at: datetime, event: str, numbers: dict[str, str]
) -> HoldView:
    return HoldView(
        reason=readable_code(reason),
        invoice=None if invoice_id is None else numbers.get(invoice_id, invoice_id),
        invoice_anchor=None if invoice_id not in numbers else invoice_anchor(invoice_id),
        at=iso_minute(at),
        event=event,
    )


def _customer_view(
    customer: CustomerRow, numbers: dict[str, str], start: datetime, end: datetime
) -> CustomerView:
    currency = customer.currency
    limit, exposure = customer.credit_limit, customer.exposure
    utilisation = None
    if limit is not None and exposure is not None and limit > 0:
        utilisation = float(exposure * 100 / limit)
    return CustomerView(
        row=customer,
        credit_limit=None if limit is None or currency is None else money(limit, currency),
        exposure=None if exposure is None or currency is None else money(exposure, currency),
        utilisation=None if utilisation is None else round(min(utilisation, 100.0), 1),
        used_percent=None if utilisation is None else f"{utilisation:.0f}% of limit",
        over_limit=utilisation is not None and utilisation > 100,
        reasons=[
            _hold_view(hold.reason, hold.invoice_id, hold.placed_at, "placed", numbers)
            for hold in sorted(customer.hold_reasons, key=lambda hold: hold.placed_at)
        ],
        history=[
            _hold_view(change.reason, change.invoice_id, change.at, change.event, numbers)
            for change in sorted(customer.hold_history, key=lambda change: change.at)
        ],
        chart=_chart(customer, start, end),
    )


def _totals(data: ReportData) -> Totals:
    outstanding: dict[str, Decimal] = defaultdict(Decimal)
    for invoice in data.invoices:
        outstanding[invoice.currency] += invoice.balance
    return Totals(
        invoices=len(data.invoices),
        paid=sum(1 for invoice in data.invoices if invoice.status == "paid"),
        open=sum(1 for invoice in data.invoices if invoice.status == "open"),
        claimed=sum(1 for invoice in data.invoices if invoice.outcome == "CLAIMED"),
        rejected=len(data.rejections),
        outstanding=[
            money(amount, currency)
            for currency, amount in sorted(outstanding.items())
            if amount != 0
        ],
    )


def _environment() -> Environment:
    # Autoescape is on for every value: names, numbers and reasons come from outside documents.
    environment = Environment(
        autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    environment.filters["money"] = money
    return environment


def _template_source() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


def render_report(data: ReportData) -> str:
    invoices = {invoice.invoice_id: invoice for invoice in data.invoices}
    numbers = {invoice_id: invoice.invoice_number for invoice_id, invoice in invoices.items()}

    # Entries are ordered by time; the sort is stable, so events recorded at the same instant
    # (a payment, the settlement, the hold release) keep the order the simulator wrote them in.
    entries_by_invoice: dict[str | None, list[TimelineEntry]] = defaultdict(list)
    for entry in sorted(data.timeline, key=lambda entry: entry.at):
        key = entry.invoice_id if entry.invoice_id in invoices else None
        entries_by_invoice[key].append(entry)
    emails_by_invoice: dict[str | None, list[EmailRow]] = defaultdict(list)
    for email in data.emails:
        emails_by_invoice[email.invoice_id if email.invoice_id in invoices else None].append(email)

    invoice_views = [
        _invoice_view(
            invoice,
            entries_by_invoice.get(invoice.invoice_id, []),
            emails_by_invoice.get(invoice.invoice_id, []),
            data.milestones,
        )
        for invoice in data.invoices
    ]
    unattached_events = [_event_view(entry, None) for entry in entries_by_invoice.get(None, [])]
    unattached_emails = _email_views(emails_by_invoice.get(None, []))

    template = _environment().from_string(_template_source())
    return template.render(
        title=data.title,
        generated=iso_minute(data.generated_at),
        start=iso_date(data.start),
        end=iso_date(data.end),
        span_days=(data.end.astimezone(UTC).date() - data.start.astimezone(UTC).date()).days,
        policy_version=data.policy_version,
        milestones=[
            MilestoneView(MILESTONE_LABELS.get(stage, humanise(stage)), relative_day(days))
            for stage, days in sorted(data.milestones.items(), key=lambda item: item[1])
        ],
        totals=_totals(data),
        customers=[
            _customer_view(customer, numbers, data.start, data.end) for customer in data.customers
        ],
        invoices=invoice_views,
        unattached_events=unattached_events,
        unattached_emails=unattached_emails,
        rejections=[
            RejectionView(row=rejection, at=iso_minute(rejection.at))
            for rejection in sorted(data.rejections, key=lambda rejection: rejection.at)
        ],
    )


def write_report(data: ReportData, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(data), encoding="utf-8")
