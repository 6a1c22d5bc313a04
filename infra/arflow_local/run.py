"""The main job: send every input as its sender would, run the clock until every lifecycle has
ended, and write the timeline, the outbox and the report."""

import heapq
import itertools
import json
import re
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from arflow.dal.store import Invoices
from arflow.models.invoice import document_id
from arflow.models.policy import Policy
from arflow.models.records import InvoiceRecord
from arflow_local import motolink
from arflow_local.scenario import Delivery, Plan, ScenarioEvent, when
from arflow_local.simulation import LOCAL_PARAMETERS, Simulation, simulation
from arflow_local.stack import ACCOUNT_ID


@dataclass
class Rejection:
    source: str
    at: datetime
    status: int
    error: str
    message: str
    problems: list[dict[str, str]]
    invoice_id: str


@dataclass
class RunResult:
    out: Path
    timeline: list[dict[str, Any]]
    accepted: dict[str, str] = field(default_factory=dict)  # invoice id -> source file
    rejections: list[Rejection] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    emails: int = 0
    failures: int = 0


class _Progress:
    """A one-line indicator of the run, refreshed from its own thread (not a clock actor)."""

    def __init__(self, stream: TextIO, clock_now: Any, total: int) -> None:
        self._stream = stream
        self._now = clock_now
        self._total = total
        self._stop = threading.Event()
        self._tty = stream.isatty()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.started = 0

    def __enter__(self) -> "_Progress":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._show(final=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.2 if self._tty else 5.0):
            self._show()

    def _show(self, final: bool = False) -> None:
        running = motolink.live_executions()
        ended = max(self.started - running, 0)
        line = (
            f"[{self._now():%Y-%m-%d}] documents sent {self.started}/{self._total} · "
            f"lifecycles running {running} · ended {ended}"
        )
        if self._tty:
            self._stream.write("\r" + line.ljust(90) + ("\n" if final else ""))
        elif final or running:
            self._stream.write(line + "\n")
        self._stream.flush()


def run(
    plan: Plan,
    out: Path,
    start: datetime | None = None,
    policy_path: Path | None = None,
    stream: TextIO = sys.stdout,
) -> RunResult:
    policy_file = policy_path or plan.policy_path
    policy_text = policy_file.read_text(encoding="utf-8") if policy_file else "{}"
    if plan.outlook_path is not None:
        # The scenario's outlook table replaces the shipped one, as a policy document can.
        document = yaml.safe_load(policy_text) or {}
        document["outlook_csv"] = plan.outlook_path.read_text(encoding="utf-8")
        policy_text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    Policy.from_text(policy_text)  # a bad policy stops the run before anything is sent

    known = [d.at for d in plan.deliveries if d.at is not None]
    begin = start or plan.start or (min(known) if known else datetime.now(UTC))
    queue: list[tuple[datetime, int, str, Any]] = []
    order = itertools.count()
    # On the same instant invoices go before the credit notes that may refer to them.
    for delivery in sorted(plan.deliveries, key=lambda d: d.meta.get("is_credit", False)):
        heapq.heappush(queue, (max(delivery.at or begin, begin), next(order), "document", delivery))

    result = RunResult(out=out, timeline=[])
    pending = _events_by_invoice(plan)
    with (
        simulation(begin, policy_text) as sim,
        _Progress(stream, sim.clock.now, len(plan.deliveries)) as progress,
    ):
        for reports in plan.credit_reports:
            sim.load_credit_reports(reports)
        ticks = _daily_ticks(sim, begin)
        while queue or motolink.live_executions():
            # Scheduled jobs (the daily credit review) run while anything is still going on.
            tick = ticks.peek()
            if tick is not None and (not queue or tick <= queue[0][0]):
                sim.advance_to(tick)
                sim.run_schedules()
                ticks.advance()
                continue
            if not queue:
                break
            at, _, kind, item = heapq.heappop(queue)
            sim.advance_to(at)
            if kind == "document":
                progress.started += 1
                accepted = _deliver(sim, item, result)
                if accepted is not None:
                    invoice_id, due = accepted
                    for event in _take_events(pending, item):
                        at_ = max(event.resolve(due), sim.clock.now())
                        heapq.heappush(queue, (at_, next(order), "event", (invoice_id, event)))
            else:
                invoice_id, event = item
                _act(sim, invoice_id, event, result)
        sim.run_until_idle()
        result.timeline = _merge_timeline(sim.timeline(), result.rejections)
        result.failures = len(sim.stack.failures)
        for failure in sim.stack.failures:
            result.notes.append(
                f"{failure.function} raised {failure.error_type}: {failure.message}"
            )
        for key, events in pending.items():
            result.notes += [
                f"event for {key} at {e.at} not sent: no such invoice was accepted" for e in events
            ]
        _write_outputs(sim, result, plan, begin)
    return result


class _Ticks:
    """The instants the stack's schedules fire at, from the start of the run on."""

    def __init__(self, times: list[tuple[int, int]], begin: datetime) -> None:
        self._times = sorted(set(times))
        self._day = begin.date()
        self._begin = begin
        self._index = 0
        self._skip_past()

    def _current(self) -> datetime | None:
        if not self._times:
            return None
        hour, minute = self._times[self._index]
        return datetime.combine(self._day, time(hour, minute), tzinfo=UTC)

    def _skip_past(self) -> None:
        while self._times and (current := self._current()) is not None and current < self._begin:
            self.advance()

    def peek(self) -> datetime | None:
        return self._current()

    def advance(self) -> None:
        self._index += 1
        if self._index == len(self._times):
            self._index = 0
            self._day = date.fromordinal(self._day.toordinal() + 1)


def _daily_ticks(sim: Simulation, begin: datetime) -> _Ticks:
    return _Ticks([(s.hour, s.minute) for s in sim.stack.schedules], begin)


def _events_by_invoice(plan: Plan) -> dict[str, list[ScenarioEvent]]:
    pending: dict[str, list[ScenarioEvent]] = {}
    for event in plan.events:
        pending.setdefault(event.invoice, []).append(event)
    return pending


def _take_events(
    pending: dict[str, list[ScenarioEvent]], delivery: Delivery
) -> list[ScenarioEvent]:
    names = [n for n in (delivery.key, delivery.meta.get("invoice_number")) if n]
    taken: list[ScenarioEvent] = []
    for name in names:
        taken += pending.pop(name, [])
    return taken


def _deliver(sim: Simulation, delivery: Delivery, result: RunResult) -> tuple[str, date] | None:
    if delivery.channel == "stripe":
        answer = sim.post_stripe_event(delivery.body)
    else:
        answer = sim.post_document(delivery.body, delivery.content_type)
    body = answer.json() if answer.body else {}
    status = body.get("status") if isinstance(body, dict) else None

    if answer.status < 300 and status in ("accepted", "duplicate", "credit_applied"):
        invoice_id = str(body["invoice_id"])
        if status == "duplicate":
            result.duplicates.append(delivery.source)
        else:
            result.accepted[invoice_id] = delivery.source
        if status == "accepted":
            return invoice_id, date.fromisoformat(body["due_date"])
        return None

    # Refused, or acknowledged without acting on it (a Stripe event arflow does not handle).
    meta = delivery.meta
    would_be = (
        document_id(meta["supplier_id"], meta["invoice_number"])
        if meta.get("supplier_id") and meta.get("invoice_number")
        else f"rejected:{Path(delivery.source).name}"
    )
    result.rejections.append(
        Rejection(
            source=delivery.source,
            at=sim.clock.now(),
            status=answer.status,
            error=str(body.get("error") or status or "rejected"),
            message=str(body.get("message") or body.get("reason") or "rejected"),
            problems=list(body.get("problems") or []),
            invoice_id=would_be,
        )
    )
    return None


def _act(sim: Simulation, invoice_id: str, event: ScenarioEvent, result: RunResult) -> None:
    """Send a scenario event through the route a real sender would use."""
    invoice = Invoices(sim.stack.ref("InvoicesTable"), sim.stack.region).require(invoice_id)
    name = invoice.invoice_number
    if event.kind == "payment":
        amount = invoice.balance if event.amount == "balance" else event.amount
        if amount <= 0:
            result.notes.append(f"payment for {name} at {event.at}: nothing was open")
            return
        payment = {
            "payment_id": event.payment_id or f"pay-{invoice_id}-{event.at}",
            "invoice_id": invoice_id,
            "amount": str(amount),
            "currency": event.currency or invoice.currency,
            "method": "bank_transfer",
        }
        if event.amount_in_invoice_currency is not None:
            payment["amount_in_invoice_currency"] = str(event.amount_in_invoice_currency)
        answer = sim.post_payment(payment)
    elif event.kind == "credit_note":
        answer = sim.post_document(_credit_note(invoice, event), "application/json")
    elif event.kind in ("pause", "pause_end"):
        path = f"/customers/{invoice.customer_id}/pause"
        if event.kind == "pause":
            until = when(str(event.until), invoice.due_date, time(9, 0))
            body = {"reason": event.reason or "paused", "until": until.isoformat()}
            answer = sim.post_action("POST", path, body)
        else:
            answer = sim.post_action("DELETE", path, {})
    else:
        path, body = _action(invoice, event)
        answer = sim.post_action("POST", f"/invoices/{invoice_id}/{path}", body)
    if answer.status >= 300:
        result.notes.append(f"{event.kind} for {name} refused: {answer.body.decode()}")


def _action(invoice: InvoiceRecord, event: ScenarioEvent) -> tuple[str, dict[str, Any]]:
    if event.kind == "dispute":
        return "dispute", {"reason": event.reason}
    if event.kind == "dispute_resolved":
        return "dispute/resolve", {"resolution": event.resolution}
    if event.kind == "promise":
        pay_by = when(str(event.pay_by), invoice.due_date, time(0, 0)).date()
        return "promise", {"pay_by": pay_by.isoformat()}
    return "write-off", {"reason": event.reason}


def _credit_note(invoice: InvoiceRecord, event: ScenarioEvent) -> bytes:
    """A credit note the supplier issues against the invoice, as its ERP would send it."""
    amount = invoice.balance if event.amount == "balance" else event.amount
    document = invoice.document
    note = {
        "document_type": "credit_note",
        "invoice_number": event.number or f"CN-{invoice.invoice_number}",
        "supplier": document.supplier.model_dump(mode="json", exclude_none=True),
        "customer": document.customer.model_dump(mode="json", exclude_none=True),
        "issue_date": when(event.at, invoice.due_date, time(12, 0)).date().isoformat(),
        "currency": invoice.currency,
        "total_amount": str(amount),
        "billing_reference": invoice.invoice_number,
    }
    return json.dumps(note).encode()


def _merge_timeline(
    history: list[dict[str, Any]], rejections: list[Rejection]
) -> list[dict[str, Any]]:
    refused = [
        {
            "invoice_id": r.invoice_id,
            "at": r.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "event": "invoice_rejected",
            "detail": {
                "file": r.source,
                "status": r.status,
                "error": r.error,
                "reason": r.message,
                "problems": r.problems,
            },
        }
        for r in rejections
    ]
    return sorted(history + refused, key=lambda e: e["at"])


def _write_state(sim: Simulation, folder: Path) -> None:
    """What the run's tables hold at its end, for `arflow credit show` and other readers."""
    from arflow.dal.store import CreditDecisions, Customers

    folder.mkdir(parents=True, exist_ok=True)
    customers = list(Customers(sim.stack.ref("CustomersTable"), sim.stack.region).scan())
    decisions = CreditDecisions(sim.stack.ref("CreditDecisionsTable"), sim.stack.region)
    invoices = Invoices(sim.stack.ref("InvoicesTable"), sim.stack.region)
    state = {
        c.customer_id: {
            "customer": c.model_dump(mode="json"),
            "invoices": sorted(i.invoice_id for i in invoices.for_customer(c.customer_id)),
            "decisions": decisions.for_customer(c.customer_id),
        }
        for c in customers
    }
    (folder / "customers.json").write_text(
        json.dumps(state, indent=2, default=str, ensure_ascii=False), encoding="utf-8"
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "message"


def _write_outputs(sim: Simulation, result: RunResult, plan: Plan, begin: datetime) -> None:
    out = result.out
    outbox = out / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    for old in outbox.glob("*.eml"):
        old.unlink()

    with (out / "timeline.jsonl").open("w", encoding="utf-8") as timeline:
        for entry in result.timeline:
            timeline.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    sent_by_message = {
        e["detail"][key]: e
        for e in result.timeline
        for key in ("message_id", "finance_message_id")
        if isinstance(e.get("detail"), dict) and e["detail"].get(key)
    }
    emails: list[dict[str, Any]] = []
    raw_messages = motolink.sent_emails(ACCOUNT_ID, sim.stack.region)
    for number, message in enumerate(raw_messages, start=1):
        event = sent_by_message.get(message.id, {})
        name = (
            f"{number:04d}-{event.get('event', 'email')}-{event.get('invoice_id', 'unknown')}.eml"
        )
        (outbox / name).write_bytes(message.raw_data.encode())
        emails.append({"file": f"outbox/{name}", "event": event, "raw": message.raw_data})

    finance = LOCAL_PARAMETERS["FinanceEmail"]
    topic = sim.stack.ref("FinanceTopic")
    for number, note in enumerate(
        motolink.published_notifications(ACCOUNT_ID, sim.stack.region, topic), start=1
    ):
        message_id, text, subject = note[0], note[1], note[2]
        event = sent_by_message.get(message_id, {})
        notice = EmailMessage()
        notice["From"] = f"arflow <no-reply@sns.{sim.stack.region}.amazonaws.com>"
        notice["To"] = finance
        notice["Subject"] = subject or "arflow finance notice"
        at = event.get("at")
        notice["Date"] = format_datetime(
            datetime.fromisoformat(at.replace("Z", "+00:00")) if at else sim.clock.now()
        )
        notice.set_content(text)
        name = f"finance-{number:04d}-{_slug(subject or 'notice')}.eml"
        (outbox / name).write_bytes(bytes(notice))
        emails.append({"file": f"outbox/{name}", "event": event, "finance": True})
    result.emails = len(emails)

    _write_state(sim, out / "state")

    from arflow_local.reporting import build_report

    build_report(sim, result, plan, begin, emails, out / "report.html")


def summary_lines(sim_result: RunResult) -> list[str]:
    """One line per invoice: number, outcome, the last thing that happened."""
    by_invoice: dict[str, list[dict[str, Any]]] = {}
    for entry in sim_result.timeline:
        by_invoice.setdefault(entry["invoice_id"], []).append(entry)
    lines = []
    for invoice_id, entries in by_invoice.items():
        received = next((e for e in entries if e["event"] == "invoice_received"), None)
        ended = next((e for e in entries if e["event"] == "lifecycle_ended"), None)
        rejected = [e for e in entries if e["event"] == "invoice_rejected"]
        credit = next((e for e in entries if e["event"] == "credit_applied"), None)
        if received:
            number = received["detail"].get("invoice_number", invoice_id)
            amount = f"{received['detail'].get('currency')} {received['detail'].get('amount')}"
            outcome = ended["detail"]["outcome"] if ended else "still open"
            stages = len([e for e in entries if e["event"].endswith("_sent")])
            lines.append(f"  {number:<28} {amount:>16}  {outcome:<10} {stages} notice(s)")
        elif credit:
            lines.append(f"  {credit['detail'].get('credit_note', invoice_id):<28} credit applied")
        for entry in rejected:
            lines.append(
                f"  {Path(entry['detail']['file']).name:<28} "
                f"rejected ({entry['detail']['status']}): {entry['detail']['reason']}"
            )
    return lines
