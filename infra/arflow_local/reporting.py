"""From a finished run to the report's data: invoices, customers, e-mails, rejections."""

from datetime import datetime
from decimal import Decimal
from email import policy as email_policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arflow.dal.store import Customers, Invoices
from arflow.models.policy import STAGE_ORDER, Policy
from arflow_local.report import (
    CreditPoint,
    CustomerRow,
    EmailRow,
    HoldChange,
    HoldReason,
    InvoiceRow,
    Rejection,
    ReportData,
    TimelineEntry,
    write_report,
)
from arflow_local.simulation import Simulation

if TYPE_CHECKING:
    from arflow_local.run import RunResult
    from arflow_local.scenario import Plan


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def build_report(
    sim: Simulation,
    result: "RunResult",
    plan: "Plan",
    begin: datetime,
    emails: list[dict[str, Any]],
    path: Path,
) -> None:
    region = sim.stack.region
    policy_text = sim.stack.client("ssm").get_parameter(Name=sim.stack.ref("PolicyParameter"))
    policy = Policy.from_text(policy_text["Parameter"]["Value"])
    invoices = [
        i
        for i in Invoices(sim.stack.ref("InvoicesTable"), region).scan()
        if i.document.document_type.value == "invoice" and not i.document.is_credit
    ]
    timeline = [
        TimelineEntry(
            invoice_id=e["invoice_id"], at=_at(e["at"]), event=e["event"], detail=e["detail"]
        )
        for e in result.timeline
    ]

    balances = _balance_histories(timeline)
    credit = _credit_histories(timeline, invoices)
    invoice_rows = [
        InvoiceRow(
            invoice_id=i.invoice_id,
            invoice_number=i.invoice_number,
            supplier_name=i.document.supplier.name,
            customer_id=i.customer_id,
            customer_name=i.document.customer.name,
            currency=i.currency,
            total_amount=i.total_amount,
            balance=i.balance,
            issue_date=i.issue_date,
            due_date=i.due_date,
            due_date_source=i.due_date_source.value,
            status=i.status.value,
            outcome=i.outcome.value if i.outcome else None,
            insured=i.insured,
            source=i.document.source.value,
            source_file=result.accepted.get(i.invoice_id),
            balance_history=balances.get(i.invoice_id, []),
        )
        for i in sorted(invoices, key=lambda i: (i.issue_date, i.invoice_number))
    ]

    customers = []
    for customer in Customers(sim.stack.ref("CustomersTable"), region).scan():
        own = [i for i in invoices if i.customer_id == customer.customer_id]
        changes = [
            HoldChange(
                at=e.at,
                event="placed" if e.event == "order_hold_placed" else "released",
                reason=str(e.detail.get("reason", "")),
                invoice_id=e.invoice_id,
            )
            for e in timeline
            if e.event in ("order_hold_placed", "order_hold_released")
            and e.detail.get("customer_id") == customer.customer_id
        ]
        customers.append(
            CustomerRow(
                customer_id=customer.customer_id,
                name=customer.name,
                on_hold=customer.on_hold,
                hold_reasons=[
                    HoldReason(reason=h.reason, invoice_id=h.invoice_id, placed_at=h.placed_at)
                    for h in customer.holds.values()
                ],
                credit_limit=customer.credit_limit,
                exposure=sum(
                    (
                        i.balance
                        for i in own
                        if i.is_open and i.currency == customer.credit_currency
                    ),
                    Decimal(0),
                ),
                currency=customer.credit_currency,
                hold_history=changes,
                grade=customer.last_decision.grade if customer.last_decision else None,
                decision=customer.last_decision.kind if customer.last_decision else None,
                credit_history=credit.get(customer.customer_id, []),
            )
        )

    parser = BytesParser(policy=email_policy.default)
    email_rows = []
    for email in emails:
        event = email.get("event") or {}
        if "raw" in email:
            message = parser.parsebytes(str(email["raw"]).encode())
            to, subject = str(message["To"]), str(message["Subject"])
            language = str(
                message.get("Content-Language", event.get("detail", {}).get("language", ""))
            )
            sent_at = parsedate_to_datetime(str(message["Date"]))
        else:
            to, subject, language = "finance", str(event.get("event", "finance notice")), "en"
            sent_at = _at(event["at"]) if event.get("at") else sim.clock.now()
        email_rows.append(
            EmailRow(
                file=email["file"],
                invoice_id=event.get("invoice_id"),
                kind=str(event.get("event", "finance_notice" if email.get("finance") else "email")),
                to=to,
                subject=subject,
                language=language,
                sent_at=sent_at,
            )
        )

    rejections = [
        Rejection(
            source_file=r.source,
            at=r.at,
            status=r.status,
            error=r.error,
            message=r.message,
            problems=[p for p in r.problems if isinstance(p, dict)],
        )
        for r in result.rejections
    ]
    end = max((e.at for e in timeline), default=begin)
    write_report(
        ReportData(
            title=f"arflow simulation: {plan.title}",
            generated_at=sim.clock.now(),
            start=begin,
            end=end,
            policy_version=policy.version,
            milestones={s.value: policy.milestones.offset(s) for s in STAGE_ORDER},
            invoices=invoice_rows,
            timeline=timeline,
            rejections=rejections,
            customers=sorted(customers, key=lambda c: c.name),
            emails=email_rows,
        ),
        path,
    )


_BALANCE_EVENTS = {"payment_received", "credit_applied"}
_CLOSING_EVENTS = {"invoice_settled", "written_off"}


def _balance_histories(
    timeline: list[TimelineEntry],
) -> dict[str, list[tuple[datetime, Decimal]]]:
    """Each invoice's open balance from every instant it changed."""
    histories: dict[str, list[tuple[datetime, Decimal]]] = {}
    for entry in timeline:
        if entry.invoice_id is None:
            continue
        detail = entry.detail
        if (
            entry.event == "invoice_received"
            and "amount" in detail
            and not detail.get("redelivery")
        ):
            histories.setdefault(entry.invoice_id, []).append(
                (entry.at, Decimal(str(detail["amount"])))
            )
        elif entry.event in _BALANCE_EVENTS and "balance" in detail:
            histories.setdefault(entry.invoice_id, []).append(
                (entry.at, Decimal(str(detail["balance"])))
            )
        elif entry.event in _CLOSING_EVENTS and entry.invoice_id in histories:
            histories[entry.invoice_id].append((entry.at, Decimal(0)))
    return histories


def _credit_histories(
    timeline: list[TimelineEntry], invoices: list[Any]
) -> dict[str, list[CreditPoint]]:
    """Each customer's limit and exposure (open balances) from every instant either changed."""
    owner = {i.invoice_id: i.customer_id for i in invoices}
    open_balances: dict[str, dict[str, Decimal]] = {}
    limits: dict[str, Decimal | None] = {}
    points: dict[str, list[CreditPoint]] = {}
    for entry, balance in _balance_steps(timeline):
        customer = owner.get(entry.invoice_id or "")
        if customer is None and (entry.invoice_id or "").startswith("customer:"):
            customer = (entry.invoice_id or "").removeprefix("customer:")
        if customer is None:
            continue
        if balance is not None and entry.invoice_id in owner:
            open_balances.setdefault(customer, {})[entry.invoice_id or ""] = balance
        new_limit = entry.detail.get("new_limit") or (
            entry.detail.get("credit_limit") if entry.event == "credit_checked" else None
        )
        if new_limit is not None:
            limits[customer] = Decimal(str(new_limit))
        exposure = sum(open_balances.get(customer, {}).values(), Decimal(0))
        points.setdefault(customer, []).append(
            CreditPoint(at=entry.at, credit_limit=limits.get(customer), exposure=exposure)
        )
    return points


def _balance_steps(
    timeline: list[TimelineEntry],
) -> list[tuple[TimelineEntry, Decimal | None]]:
    steps: list[tuple[TimelineEntry, Decimal | None]] = []
    for entry in timeline:
        detail = entry.detail
        balance: Decimal | None = None
        if (
            entry.event == "invoice_received"
            and "amount" in detail
            and not detail.get("redelivery")
        ):
            balance = Decimal(str(detail["amount"]))
        elif entry.event in _BALANCE_EVENTS and "balance" in detail:
            balance = Decimal(str(detail["balance"]))
        elif entry.event in _CLOSING_EVENTS:
            balance = Decimal(0)
        elif not entry.event.startswith("credit_"):
            continue
        steps.append((entry, balance))
    return steps
