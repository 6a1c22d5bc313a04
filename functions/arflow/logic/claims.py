"""Trade-credit insurance: whether an invoice is covered, what the insurer owes, the claim pack.

The supplier notifies the insurer of an overdue before the policy's deadline and claims when the
buyer defaults. The insured loss is the unpaid balance capped by the buyer's cover; the insurer
pays its indemnity share of that loss.
"""

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from babel.numbers import format_currency
from jinja2 import Environment, StrictUndefined, Template
from pydantic import BaseModel, ConfigDict, Field

from arflow.models.claim import (
    ClaimInvoice,
    ClaimSubmission,
    OverdueNotification,
    PackDocument,
    PackDocumentKind,
    PaymentRecord,
    SentNotice,
    TimelineEvent,
)
from arflow.models.instants import UtcDatetime
from arflow.models.money import quantize
from arflow.models.policy import InsurancePolicy, Policy

_HUNDRED = Decimal(100)


class NotInsuredError(Exception):
    """The invoice is not covered: no insurance policy, or the document opts out."""


def is_insured(policy: Policy, document_insured: bool | None) -> bool:
    """Covered when the policy covers every buyer or the document opts in; never without a policy.

    A document's `insured: false` wins over a policy that covers all buyers.
    """
    if policy.insurance is None:
        return False
    if document_insured is not None:
        return document_insured
    return policy.insurance.covers_all_buyers


def insured_loss(balance: Decimal, cover_limit: Decimal, currency: str) -> Decimal:
    """The unpaid balance, capped by the buyer's cover; never negative."""
    loss = max(min(balance, cover_limit), Decimal(0))
    return quantize(loss, currency)


def amount_claimed(loss: Decimal, indemnity_percent: Decimal, currency: str) -> Decimal:
    """The insurer's share of the loss, rounded half-up to the currency's minor unit."""
    if loss < 0:
        raise ValueError("the insured loss must not be negative")
    if not Decimal(0) < indemnity_percent <= _HUNDRED:
        raise ValueError("the indemnity percentage must be above 0 and at most 100")
    return quantize(loss * indemnity_percent / _HUNDRED, currency)


def notification_deadline(due_date: date, policy: InsurancePolicy) -> date:
    """The last day the insurer may hear of the overdue."""
    return due_date + timedelta(days=policy.overdue_notification_deadline_days)


def _local_day(instant: datetime, policy: Policy) -> date:
    # The policy's days are the supplier's calendar days, not UTC's.
    return instant.astimezone(ZoneInfo(policy.timezone)).date()


def _insurance_for(invoice: ClaimInvoice, policy: Policy) -> InsurancePolicy:
    if policy.insurance is None or not is_insured(policy, invoice.insured):
        raise NotInsuredError(f"invoice {invoice.invoice_id} is not covered by credit insurance")
    return policy.insurance


def build_overdue_notification(
    invoice: ClaimInvoice, amount_outstanding: Decimal, notified_at: datetime, policy: Policy
) -> OverdueNotification:
    """The notification of an overdue insured invoice, and whether it is still in time."""
    insurance = _insurance_for(invoice, policy)
    deadline = notification_deadline(invoice.due_date, insurance)
    today = _local_day(notified_at, policy)

    return OverdueNotification(
        policy_number=insurance.policy_number,
        insurer=insurance.insurer,
        supplier_id=invoice.supplier_id,
        supplier_name=invoice.supplier_name,
        customer_id=invoice.customer_id,
        customer_name=invoice.customer_name,
        customer_country=invoice.customer_country,
        invoice_id=invoice.invoice_id,
        invoice_number=invoice.invoice_number,
        currency=invoice.currency,
        amount_outstanding=max(amount_outstanding, Decimal(0)),
        due_date=invoice.due_date,
        days_overdue=(today - invoice.due_date).days,
        notified_at=notified_at,
        deadline=deadline,
        within_deadline=today <= deadline,
    )


class ClaimPack(BaseModel):
    """Everything the insurer's claims handler needs to accept a claim, and what it comes to."""

    model_config = ConfigDict(extra="forbid")

    pack_version: Literal[1] = 1
    prepared_at: UtcDatetime
    insurer: str
    policy_number: str
    invoice: ClaimInvoice
    days_overdue: int
    notification_deadline: date
    amount_paid: Decimal
    amount_outstanding: Decimal
    cover_limit: Decimal
    insured_loss: Decimal
    indemnity_percent: Decimal
    amount_claimed: Decimal
    notices: list[SentNotice] = Field(description="In the order they were sent")
    letters: list[str] = Field(description="S3 keys of the archived letters")
    payments: list[PaymentRecord] = Field(description="In the order they were received")
    timeline: list[TimelineEvent] = Field(description="Oldest first")

    def to_json(self) -> bytes:
        """The manifest: amounts as strings, so no reader turns them into floats."""
        manifest = self.model_dump(mode="json")
        return json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode()

    def to_html(self) -> str:
        """A one-page summary for the insurer's claims handler."""
        return _summary_template().render(pack=self)

    def documents(self, pack_key: str, summary_key: str | None = None) -> list[PackDocument]:
        """What the pack holds, for the submission: stored copies by key, the rest inline."""
        documents = [
            PackDocument(kind=PackDocumentKind.MANIFEST, key=pack_key, description="Claim manifest")
        ]
        if summary_key is not None:
            documents.append(
                PackDocument(
                    kind=PackDocumentKind.SUMMARY, key=summary_key, description="Claim summary"
                )
            )
        for notice in self.notices:
            sent = f"{notice.kind.value} sent {notice.sent_at.isoformat()}"
            if notice.s3_key is not None:
                documents.append(
                    PackDocument(kind=PackDocumentKind.NOTICE, key=notice.s3_key, description=sent)
                )
            else:
                documents.append(
                    PackDocument(
                        kind=PackDocumentKind.NOTICE,
                        inline=f"message id {notice.message_id}",
                        description=sent,
                    )
                )
        documents.extend(
            PackDocument(kind=PackDocumentKind.LETTER, key=key, description="Archived letter")
            for key in self.letters
        )
        documents.append(
            PackDocument(
                kind=PackDocumentKind.PAYMENT_HISTORY,
                inline=_json_lines(payment.model_dump(mode="json") for payment in self.payments),
                description=f"{len(self.payments)} payment(s) received",
            )
        )
        documents.append(
            PackDocument(
                kind=PackDocumentKind.TIMELINE,
                inline=_json_lines(event.model_dump(mode="json") for event in self.timeline),
                description=f"{len(self.timeline)} event(s)",
            )
        )
        return documents

    def submission(self, pack_key: str, summary_key: str | None = None) -> ClaimSubmission:
        """The claim as the insurer adapter submits it, once the pack is stored at `pack_key`."""
        invoice = self.invoice
        return ClaimSubmission(
            policy_number=self.policy_number,
            insurer=self.insurer,
            supplier_id=invoice.supplier_id,
            supplier_name=invoice.supplier_name,
            customer_id=invoice.customer_id,
            customer_name=invoice.customer_name,
            customer_country=invoice.customer_country,
            invoice_id=invoice.invoice_id,
            invoice_number=invoice.invoice_number,
            currency=invoice.currency,
            amount_outstanding=self.amount_outstanding,
            due_date=invoice.due_date,
            days_overdue=self.days_overdue,
            claimed_at=self.prepared_at,
            invoice_total=invoice.total_amount,
            amount_paid=self.amount_paid,
            insured_loss=self.insured_loss,
            indemnity_percent=self.indemnity_percent,
            amount_claimed=self.amount_claimed,
            pack_key=pack_key,
            documents=self.documents(pack_key, summary_key),
        )


def build_claim_pack(
    invoice: ClaimInvoice,
    *,
    notices: Sequence[SentNotice],
    letters: Sequence[str],
    payments: Sequence[PaymentRecord],
    timeline: Sequence[TimelineEvent],
    policy: Policy,
    prepared_at: datetime,
    cover_limit: Decimal | None = None,
) -> ClaimPack:
    """The claim pack of an insured invoice the buyer has defaulted on.

    `cover_limit` is the buyer's named limit; without one the policy's discretionary limit applies.
    Payments are in the invoice's currency. Raises NotInsuredError when the invoice is not covered.
    """
    insurance = _insurance_for(invoice, policy)
    currency = invoice.currency

    # NOTE: the cover is applied to this invoice alone; cover already taken by other claims on the
    # same buyer is not subtracted here. A caller that tracks it passes what is left as cover_limit.
    cover = insurance.discretionary_limit if cover_limit is None else cover_limit
    received = [
        payment.model_copy(update={"amount": quantize(payment.amount, currency)})
        for payment in payments
    ]
    paid = sum((payment.amount for payment in received), Decimal(0))
    balance = invoice.total_amount - invoice.amount_credited - paid
    loss = insured_loss(balance, cover, currency)

    return ClaimPack(
        prepared_at=prepared_at,
        insurer=insurance.insurer,
        policy_number=insurance.policy_number,
        invoice=invoice,
        days_overdue=(_local_day(prepared_at, policy) - invoice.due_date).days,
        notification_deadline=notification_deadline(invoice.due_date, insurance),
        amount_paid=paid,
        amount_outstanding=quantize(max(balance, Decimal(0)), currency),
        cover_limit=quantize(cover, currency),
        insured_loss=loss,
        indemnity_percent=insurance.indemnity_percent,
        amount_claimed=amount_claimed(loss, insurance.indemnity_percent, currency),
        notices=sorted(notices, key=lambda notice: notice.sent_at),
        letters=list(letters),
        payments=sorted(received, key=lambda payment: payment.received_at),
        timeline=sorted(timeline, key=lambda event: event.at),
    )


def _json_lines(rows: Iterable[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(row, sort_keys=True) for row in rows)


def _money(amount: Decimal, currency: str) -> str:
    # The ISO code rather than a symbol: "$" alone does not say which dollar.
    return format_currency(
        amount, currency, format="¤¤ #,##0.00", currency_digits=True, locale="en"
    )


def _instant(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


@lru_cache(maxsize=1)
def _summary_template() -> Template:
    environment = Environment(
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["money"] = _money
    environment.filters["instant"] = _instant
    return environment.from_string(_SUMMARY)


_SUMMARY = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Credit insurance claim {{ pack.policy_number }} / {{ pack.invoice.invoice_number }}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; font-size: 10pt; margin: 2em; color: #111; }
h1 { font-size: 15pt; margin-bottom: 0.2em; }
h2 { font-size: 11pt; margin: 1.2em 0 0.3em; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 2px 6px; vertical-align: top; }
td.amount, th.amount { text-align: right; white-space: nowrap; }
tr.claimed td { font-weight: bold; border-top: 1px solid #111; }
.muted { color: #555; }
</style>
</head>
<body>
{% set inv = pack.invoice %}
{% set cur = inv.currency %}
<h1>Credit insurance claim</h1>
<p class="muted">Policy {{ pack.policy_number }} with {{ pack.insurer }}.
Prepared {{ pack.prepared_at | instant }}.</p>

<h2>Buyer and supplier</h2>
<table>
<tr><th>Buyer</th><td>{{ inv.customer_name }} (id {{ inv.customer_id }}
{%- if inv.customer_country %}, {{ inv.customer_country }}{% endif %})</td></tr>
<tr><th>Supplier</th><td>{{ inv.supplier_name }} (id {{ inv.supplier_id }})</td></tr>
</table>

<h2>Invoice</h2>
<table>
<tr><th>Number</th>
<td>{{ inv.invoice_number }} <span class="muted">({{ inv.invoice_id }})</span></td></tr>
<tr><th>Issued</th><td>{{ inv.issue_date.isoformat() }}</td></tr>
<tr><th>Due</th><td>{{ inv.due_date.isoformat() }} ({{ pack.days_overdue }} days overdue)</td></tr>
<tr><th>Overdue notification deadline</th><td>{{ pack.notification_deadline.isoformat() }}</td></tr>
{% if inv.payment_instructions and inv.payment_instructions.payment_reference %}
<tr><th>Payment reference</th><td>{{ inv.payment_instructions.payment_reference }}</td></tr>
{% endif %}
</table>

<h2>Amounts</h2>
<table>
<tr><td>Invoice total</td><td class="amount">{{ inv.total_amount | money(cur) }}</td></tr>
{% if inv.amount_credited %}
<tr><td>Credited</td><td class="amount">{{ inv.amount_credited | money(cur) }}</td></tr>
{% endif %}
<tr><td>Paid</td><td class="amount">{{ pack.amount_paid | money(cur) }}</td></tr>
<tr><td>Outstanding</td><td class="amount">{{ pack.amount_outstanding | money(cur) }}</td></tr>
<tr><td>Buyer's cover</td><td class="amount">{{ pack.cover_limit | money(cur) }}</td></tr>
<tr><td>Insured loss</td><td class="amount">{{ pack.insured_loss | money(cur) }}</td></tr>
<tr><td>Indemnity</td><td class="amount">{{ pack.indemnity_percent }} %</td></tr>
<tr class="claimed"><td>Amount claimed</td>
<td class="amount">{{ pack.amount_claimed | money(cur) }}</td></tr>
</table>

<h2>Notices sent</h2>
{% if pack.notices %}
<table>
<tr><th>Sent</th><th>Notice</th><th>To</th><th>Subject</th><th>Copy</th></tr>
{% for notice in pack.notices %}
<tr><td>{{ notice.sent_at | instant }}</td><td>{{ notice.kind.value }}</td>
<td>{{ notice.recipient }}</td><td>{{ notice.subject }}</td>
<td>{{ notice.s3_key or ("message " ~ notice.message_id) }}</td></tr>
{% endfor %}
</table>
{% else %}
<p>No notices were sent.</p>
{% endif %}

<h2>Letters</h2>
{% if pack.letters %}
<ul>
{% for key in pack.letters %}
<li>{{ key }}</li>
{% endfor %}
</ul>
{% else %}
<p>No letters were archived.</p>
{% endif %}

<h2>Payments received</h2>
{% if pack.payments %}
<table>
<tr><th>Received</th><th>Payment</th><th class="amount">Amount</th></tr>
{% for payment in pack.payments %}
<tr><td>{{ payment.received_at | instant }}</td><td>{{ payment.payment_id }}</td>
<td class="amount">{{ payment.amount | money(cur) }}</td></tr>
{% endfor %}
</table>
{% else %}
<p>No payment was received.</p>
{% endif %}

<h2>What was done when</h2>
<table>
<tr><th>When</th><th>Event</th><th>Detail</th></tr>
{% for event in pack.timeline %}
<tr><td>{{ event.at | instant }}</td><td>{{ event.event }}</td><td>{{ event.detail }}</td></tr>
{% else %}
<tr><td colspan="3">No events were recorded.</td></tr>
{% endfor %}
</table>
</body>
</html>
"""
