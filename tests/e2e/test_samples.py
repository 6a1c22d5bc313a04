"""Real documents nobody on this project wrote (../shared/samples), through `arflow simulate`'s run.

Each file is sent as its sender would send it, on its own dates (2009 for Stripe, 2017-2018 for
Peppol), and every lifecycle runs to its end on the virtual clock.
"""

import io
import json
from dataclasses import dataclass
from email import policy as email_policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from arflow_local.run import RunResult, run
from arflow_local.scenario import Plan, plan_inputs

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"

# What becomes of each file: a lifecycle and how it ends, a credit, or a refusal and its status.
# The Peppol examples reuse invoice numbers with other content: a conflict, 409. The Stripe
# fixtures other than the invoice and the credit note are not documents arflow acts on: each is
# refused or acknowledged without action, with the reason (None: whichever status says so).
EXPECTED = {
    "peppol/Allowance-example.xml": ("lifecycle", "CLAIMED"),
    "peppol/Vat-category-S.xml": ("rejected", 409),
    "peppol/base-creditnote-correction.xml": ("credit", None),
    "peppol/base-example.xml": ("lifecycle", "CREDITED"),
    "peppol/base-negative-inv-correction.xml": ("credit", None),
    "peppol/sales-order-example.xml": ("rejected", 409),
    "peppol/vat-category-E.xml": ("lifecycle", "CLAIMED"),
    "peppol/vat-category-O.xml": ("lifecycle", "CLAIMED"),
    "peppol/vat-category-Z.xml": ("rejected", 409),
    "stripe/charge.json": ("rejected", None),
    "stripe/credit_note.json": ("credit", None),
    "stripe/customer.json": ("rejected", None),
    "stripe/event.json": ("rejected", None),
    "stripe/invoice.json": ("lifecycle", "CLAIMED"),
    "stripe/invoice_payment.json": ("rejected", None),
    "stripe/payment_intent.json": ("rejected", None),
}
CUSTOMER_NOTICES = {"reminder_sent", "overdue_notice_sent", "formal_notice_sent"}


@dataclass
class SamplesRun:
    plan: Plan
    result: RunResult
    out: Path

    def name(self, source: str) -> str:
        return Path(source).relative_to(SAMPLES).as_posix()

    def accepted_id(self, name: str) -> str | None:
        ids = [i for i, source in self.result.accepted.items() if self.name(source) == name]
        assert len(ids) <= 1, ids
        return ids[0] if ids else None

    def number(self, name: str) -> str | None:
        (delivery,) = [d for d in self.plan.deliveries if self.name(d.source) == name]
        number = delivery.meta.get("invoice_number")
        return str(number) if number is not None else None

    def events(self, invoice_id: str, event: str) -> list[dict[str, Any]]:
        return [
            e for e in self.result.timeline if e["invoice_id"] == invoice_id and e["event"] == event
        ]


@pytest.fixture(scope="module")
def samples_run(tmp_path_factory: pytest.TempPathFactory) -> SamplesRun:
    if not SAMPLES.is_dir():
        pytest.skip(f"no sample documents at {SAMPLES}")

    # Given every sample document, with the default policy
    plan = plan_inputs([SAMPLES])
    out = tmp_path_factory.mktemp("samples")

    # When the run sends them all and lets every lifecycle end
    result = run(plan, out, stream=io.StringIO())
    return SamplesRun(plan, result, out)


def test_every_sample_document_is_sent_once(samples_run: SamplesRun) -> None:
    # Then each file of the folder was delivered, and the run itself raised nothing
    on_disk = sorted(
        p.relative_to(SAMPLES).as_posix()
        for p in SAMPLES.rglob("*")
        if p.suffix.lower() in {".xml", ".json"}
    )
    assert sorted(samples_run.name(d.source) for d in samples_run.plan.deliveries) == on_disk
    assert on_disk == sorted(EXPECTED)
    assert samples_run.result.failures == 0
    assert samples_run.result.notes == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_ends_as_a_lifecycle_a_credit_or_a_refusal(
    name: str, samples_run: SamplesRun
) -> None:
    kind, expected = EXPECTED[name]
    invoice_id = samples_run.accepted_id(name)
    refusals = [
        e
        for e in samples_run.result.timeline
        if e["event"] == "invoice_rejected" and samples_run.name(e["detail"]["file"]) == name
    ]

    # Then the file is accounted for in exactly one way
    if kind == "lifecycle":
        assert invoice_id is not None
        assert refusals == []
        received = samples_run.events(invoice_id, "invoice_received")
        assert [e["detail"].get("redelivery", False) for e in received] == [False]
        (ended,) = samples_run.events(invoice_id, "lifecycle_ended")
        assert ended["detail"]["outcome"] == expected
    elif kind == "credit":
        assert invoice_id is not None
        assert refusals == []
        number = samples_run.number(name)
        applied = [
            e
            for e in samples_run.result.timeline
            if e["event"] == "credit_applied"
            and (e["invoice_id"] == invoice_id or e["detail"]["credit_note"] == number)
        ]
        assert len(applied) == 1, applied
    else:
        assert invoice_id is None
        (refusal,) = refusals
        assert refusal["detail"]["reason"]
        if expected is not None:
            assert refusal["detail"]["status"] == expected


def test_outputs_are_written(samples_run: SamplesRun) -> None:
    out = samples_run.out
    timeline = samples_run.result.timeline

    # Then the timeline file has one line per entry, each with exactly the four keys
    lines = (out / "timeline.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    assert len(entries) == len(timeline)
    assert all(set(entry) == {"invoice_id", "at", "event", "detail"} for entry in entries)
    assert [(e["at"], e["event"]) for e in entries] == [(e["at"], e["event"]) for e in timeline]

    # And the outbox holds one .eml per customer e-mail and per finance notice
    customer_sent = [e for e in timeline if e["event"] in CUSTOMER_NOTICES]
    finance_sent = [e for e in timeline if e["event"] == "finance_escalated"] + [
        e
        for e in timeline
        if e["event"] == "credit_checked" and e["detail"].get("finance_message_id")
    ]
    outbox = sorted((out / "outbox").glob("*.eml"))
    to_customers = [p for p in outbox if not p.name.startswith("finance-")]
    to_finance = [p for p in outbox if p.name.startswith("finance-")]
    assert (len(to_customers), len(to_finance)) == (len(customer_sent), len(finance_sent))
    assert samples_run.result.emails == len(outbox)
    parser = BytesParser(policy=email_policy.default)
    recipients = [str(parser.parsebytes(p.read_bytes())["To"]) for p in to_customers]
    assert recipients == [e["detail"]["to"] for e in customer_sent]

    # And the report names every invoice and every refused file
    report = (out / "report.html").read_text(encoding="utf-8")
    assert report.startswith("<!DOCTYPE html>")
    for name, (kind, _) in EXPECTED.items():
        if kind == "lifecycle":
            assert samples_run.number(name) in report, name
        if kind == "rejected":
            assert Path(name).name in report, name


@pytest.mark.parametrize("name", ["peppol/vat-category-O.xml", "peppol/vat-category-E.xml"])
def test_invoice_without_due_date_says_which_rule_gave_it(
    name: str, samples_run: SamplesRun
) -> None:
    # Given a Peppol invoice with no DueDate, only "Payment within 30 days", issued 30 August 2018
    invoice_id = samples_run.accepted_id(name)
    assert invoice_id is not None

    # Then its due date is 30 days on, from its payment terms, and the ladder runs from it
    (received,) = samples_run.events(invoice_id, "invoice_received")
    assert received["detail"]["issue_date"] == "2018-08-30"
    assert received["detail"]["due_date"] == "2018-09-29"
    assert received["detail"]["due_date_source"] == "payment_terms"
    (escalated,) = [
        e
        for e in samples_run.events(invoice_id, "finance_escalated")
        if e["detail"]["reason"] == "overdue"
    ]
    assert escalated["at"] == "2018-10-29T09:00:00Z"


@pytest.mark.parametrize(
    ("name", "unreachable_at"),
    [
        pytest.param(
            "peppol/vat-category-O.xml",
            ["2018-09-24T09:00:00Z", "2018-10-02T09:00:00Z", "2018-10-14T09:00:00Z"],
            id="peppol-no-ElectronicMail",
        ),
        pytest.param(
            "stripe/invoice.json",
            # Sent on its due date, after its reminder's time: that stage runs on arrival.
            ["2009-02-13T23:31:30Z", "2009-02-16T09:00:00Z", "2009-02-28T09:00:00Z"],
            id="stripe-no-customer_email",
        ),
    ],
)
def test_buyer_without_email_is_escalated_as_unreachable(
    name: str, unreachable_at: list[str], samples_run: SamplesRun
) -> None:
    # Given an invoice whose buyer has no e-mail address
    invoice_id = samples_run.accepted_id(name)
    assert invoice_id is not None

    # Then finance hears instead of each customer notice, and no customer e-mail is sent
    unreachable = [
        (e["at"], e["detail"]["notice_not_sent"])
        for e in samples_run.events(invoice_id, "finance_escalated")
        if e["detail"]["reason"] == "customer_unreachable"
    ]
    assert unreachable == list(
        zip(unreachable_at, ["reminder", "overdue_notice", "formal_notice"], strict=True)
    )
    for event in CUSTOMER_NOTICES:
        assert samples_run.events(invoice_id, event) == []
    assert list((samples_run.out / "outbox").glob(f"*-{invoice_id}.eml")) == []
