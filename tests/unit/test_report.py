"""The run report: what a credit controller reads on the page, checked through an HTML parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pydantic import ValidationError

from arflow_local.report import (
    CustomerRow,
    EmailRow,
    FieldProblem,
    HoldChange,
    HoldReason,
    InvoiceRow,
    Rejection,
    ReportData,
    TimelineEntry,
    render_report,
    write_report,
)

MILESTONES = {
    "reminder": -5,
    "overdue_notice": 3,
    "formal_notice": 15,
    "escalation": 30,
    "claim": 60,
}
PAID_DUE = date(2025, 2, 14)
CLAIMED_DUE = date(2025, 1, 31)
HELD_DUE = date(2025, 2, 1)

# The page's elements that hold no content: the parser never sees them closed.
VOID_TAGS = frozenset({"meta", "br", "col", "img", "hr", "input", "link"})


# A small tree of the page, enough to find elements by class and read their text.


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        parts = [child if isinstance(child, str) else child.text() for child in self.children]
        return " ".join(" ".join(parts).split())

    def iter(self) -> list[Element]:
        found: list[Element] = []
        for child in self.children:
            if isinstance(child, Element):
                found.append(child)
                found.extend(child.iter())
        return found

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        return [
            element
            for element in self.iter()
            if (tag is None or element.tag == tag) and (cls is None or cls in element.classes)
        ]

    def find(self, tag: str | None = None, cls: str | None = None) -> Element:
        found = self.find_all(tag, cls)
        assert found, f"no <{tag or '*'} class={cls!r}> in <{self.tag}>"
        return found[0]


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID_TAGS:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(page: str) -> Element:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    return builder.root


# Factories: a run of three invoices, one rejected document and two customers.


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def invoice_row(**overrides: object) -> InvoiceRow:
    values: dict[str, object] = {
        "invoice_id": "inv_paid",
        "invoice_number": "INV-2025-0042",
        "supplier_name": "Nordwind Tools GmbH",
        "customer_id": "cust_acme",
        "customer_name": "Acme Fabrication Ltd",
        "currency": "EUR",
        "total_amount": Decimal("1656.25"),
        "balance": Decimal("0.00"),
        "issue_date": PAID_DUE - timedelta(days=30),
        "due_date": PAID_DUE,
        "due_date_source": "payment_terms",
        "status": "paid",
        "outcome": "PAID",
        "insured": False,
        "source": "peppol",
        "source_file": "inbox/peppol/base-example.xml",
    }
    values.update(overrides)
    return InvoiceRow.model_validate(values)


def entry(invoice_id: str, when: datetime, event: str, **detail: object) -> TimelineEntry:
    return TimelineEntry(invoice_id=invoice_id, at=when, event=event, detail=detail)


def paid_timeline() -> list[TimelineEntry]:
    paid_at = at(PAID_DUE + timedelta(days=8), 14, 30)
    return [
        entry("inv_paid", at(PAID_DUE - timedelta(days=30)), "invoice_received", amount="1656.25"),
        entry("inv_paid", at(PAID_DUE - timedelta(days=30), 9, 1), "credit_checked"),
        entry(
            "inv_paid", at(PAID_DUE - timedelta(days=5)), "reminder_sent", recipient_language="en"
        ),
        entry("inv_paid", paid_at, "payment_received", amount="1656.25", currency="EUR"),
        entry("inv_paid", paid_at, "invoice_settled"),
        entry("inv_paid", paid_at, "lifecycle_ended", outcome="PAID"),
    ]


def claimed_timeline() -> list[TimelineEntry]:
    def day(offset: int) -> datetime:
        return at(CLAIMED_DUE + timedelta(days=offset))

    return [
        entry("inv_claimed", day(-30), "invoice_received", amount="24980.00", currency="EUR"),
        entry("inv_claimed", day(-30), "credit_checked", decision="within_limit"),
        entry("inv_claimed", day(-5), "reminder_sent", recipient_language="fr"),
        entry("inv_claimed", day(3), "overdue_notice_sent", recipient_language="fr"),
        entry("inv_claimed", day(15), "formal_notice_sent", recipient_language="fr"),
        entry("inv_claimed", day(15), "order_hold_placed", reason="formal_notice"),
        entry("inv_claimed", day(30), "finance_escalated", reason="unpaid 30 days after due date"),
        entry("inv_claimed", day(30), "insurer_notified", amount="24980.00", currency="EUR"),
        entry("inv_claimed", day(60), "claim_submitted", amount="24980.00", currency="EUR"),
        entry("inv_claimed", day(60), "lifecycle_ended", outcome="CLAIMED"),
    ]


def held_timeline() -> list[TimelineEntry]:
    released = at(HELD_DUE + timedelta(days=21), 11)
    return [
        entry("inv_held", at(HELD_DUE - timedelta(days=30)), "invoice_received", amount="812.40"),
        entry("inv_held", at(HELD_DUE + timedelta(days=15)), "formal_notice_sent"),
        entry("inv_held", at(HELD_DUE + timedelta(days=15)), "order_hold_placed"),
        entry("inv_held", released, "payment_received", amount="812.40", currency="GBP"),
        entry("inv_held", released, "invoice_settled"),
        entry("inv_held", released, "order_hold_released", reason="formal_notice"),
        entry("inv_held", released, "lifecycle_ended", outcome="PAID"),
    ]


def email(number: int, kind: str, invoice_id: str, sent_at: datetime) -> EmailRow:
    return EmailRow(
        file=f"outbox/{number:04d}-{kind}-{invoice_id}.eml",
        invoice_id=invoice_id,
        kind=kind,
        to="accounts@customer.example",
        subject=f"About your invoice ({kind})",
        language="en",
        sent_at=sent_at,
    )


def report_data(**overrides: object) -> ReportData:
    invoices = [
        invoice_row(),
        invoice_row(
            invoice_id="inv_claimed",
            invoice_number="FR-88812",
            customer_id="cust_dupont",
            customer_name="Dupont & Fils <b>SARL</b>",
            total_amount=Decimal("24980.00"),
            balance=Decimal("24980.00"),
            issue_date=CLAIMED_DUE - timedelta(days=30),
            due_date=CLAIMED_DUE,
            due_date_source="invoice",
            status="open",
            outcome="CLAIMED",
            insured=True,
            source="canonical",
        ),
        invoice_row(
            invoice_id="inv_held",
            invoice_number="<b>x</b>",
            customer_id="cust_brit",
            customer_name="Brittle Widgets plc",
            currency="GBP",
            total_amount=Decimal("812.40"),
            balance=Decimal("0.00"),
            issue_date=HELD_DUE - timedelta(days=30),
            due_date=HELD_DUE,
            source="stripe",
            source_file=None,
        ),
    ]
    placed_at = at(CLAIMED_DUE + timedelta(days=15))
    customers = [
        CustomerRow(
            customer_id="cust_dupont",
            name="Dupont & Fils <b>SARL</b>",
            on_hold=True,
            hold_reasons=[
                HoldReason(reason="formal_notice", invoice_id="inv_claimed", placed_at=placed_at)
            ],
            credit_limit=Decimal("20000"),
            exposure=Decimal("24980.00"),
            currency="EUR",
            hold_history=[
                HoldChange(
                    at=placed_at, event="placed", reason="formal_notice", invoice_id="inv_claimed"
                )
            ],
        ),
        CustomerRow(
            customer_id="cust_brit",
            name="Brittle Widgets plc",
            on_hold=False,
            hold_history=[
                HoldChange(
                    at=at(HELD_DUE + timedelta(days=15)),
                    event="placed",
                    reason="formal_notice",
                    invoice_id="inv_held",
                ),
                HoldChange(
                    at=at(HELD_DUE + timedelta(days=21), 11),
                    event="released",
                    reason="formal_notice",
                    invoice_id="inv_held",
                ),
            ],
        ),
    ]
    rejections = [
        Rejection(
            source_file="inbox/canonical/broken.json",
            at=at(date(2025, 1, 20), 12),
            status=422,
            error="InvalidInvoiceError",
            message="The invoice does not match the canonical schema",
            problems=[FieldProblem(field="customer.id", message="Field required")],
        )
    ]
    emails = [
        email(1, "reminder", "inv_paid", at(PAID_DUE - timedelta(days=5))),
        email(2, "reminder", "inv_claimed", at(CLAIMED_DUE - timedelta(days=5))),
        email(3, "formal_notice", "inv_claimed", at(CLAIMED_DUE + timedelta(days=15))),
    ]
    values: dict[str, object] = {
        "title": "Simulated run",
        "generated_at": at(date(2025, 5, 1), 0),
        "start": at(date(2025, 1, 1), 0),
        "end": at(date(2025, 5, 1), 0),
        "policy_version": "2025.1",
        "milestones": MILESTONES,
        "invoices": invoices,
        "timeline": paid_timeline() + claimed_timeline() + held_timeline(),
        "rejections": rejections,
        "customers": customers,
        "emails": emails,
    }
    values.update(overrides)
    return ReportData.model_validate(values)


def invoice_card(page: Element, invoice_id: str) -> Element:
    cards = [
        card
        for card in page.find_all("article", "invoice")
        if card.attrs.get("data-invoice-id") == invoice_id
    ]
    assert len(cards) == 1, f"expected one card for {invoice_id}, found {len(cards)}"
    return cards[0]


def customer_card(page: Element, customer_id: str) -> Element:
    cards = [
        card
        for card in page.find_all("article", "customer")
        if card.attrs.get("data-customer-id") == customer_id
    ]
    assert len(cards) == 1, f"expected one card for {customer_id}, found {len(cards)}"
    return cards[0]


def event_labels(card: Element) -> list[str]:
    return [row.find("span", "label").text() for row in card.find_all("tr", "timeline-entry")]


# Tests.


def test_every_invoice_has_a_card_headed_by_its_number() -> None:
    # Given a run of three invoices
    data = report_data()

    # When the report is rendered
    page = parse(render_report(data))

    # Then each invoice's card is headed by its number, and the overview links to every card
    numbers = {
        card.attrs["data-invoice-id"]: card.find("h3", "invoice-number").text()
        for card in page.find_all("article", "invoice")
    }
    assert numbers == {
        "inv_paid": "INV-2025-0042",
        "inv_claimed": "FR-88812",
        "inv_held": "<b>x</b>",
    }
    overview_links = [link.attrs["href"] for link in page.find("table", "overview").find_all("a")]
    assert overview_links == [
        f"#{card.attrs['id']}" for card in page.find_all("article", "invoice")
    ]


def test_the_never_paid_insured_invoice_shows_every_stage_in_order() -> None:
    # Given an insured invoice that went through every dunning stage, its entries latest first
    # (a reverse sort is stable: entries at one instant keep their recorded order)
    shuffled = sorted(claimed_timeline(), key=lambda entry: entry.at, reverse=True)
    data = report_data(timeline=paid_timeline() + shuffled + held_timeline())

    # When the report is rendered
    card = invoice_card(parse(render_report(data)), "inv_claimed")

    # Then the timeline reads in time order, with labels a controller understands
    assert event_labels(card) == [
        "Invoice received",
        "Credit checked",
        "Payment reminder sent",
        "Friendly overdue notice sent",
        "Formal dunning letter sent",
        "Order hold placed",
        "Escalated to finance and legal",
        "Credit insurer notified",
        "Insurance claim submitted",
        "Lifecycle ended",
    ]
    # And each event has its date and its day relative to the due date
    rows = card.find_all("tr", "timeline-entry")
    formal = rows[4]
    assert formal.attrs["data-event"] == "formal_notice_sent"
    assert formal.find("td", "when").text().startswith("2025-02-15")
    assert formal.find("td", "rel").text() == "due+15"
    assert rows[2].find("td", "rel").text() == "due-5"
    # And the outcome is a badge
    assert card.find("span", "outcome").text() == "CLAIMED"


def test_events_at_the_same_instant_keep_the_order_they_were_recorded_in() -> None:
    # Given a payment, the settlement, the hold release and the end, all at one instant
    data = report_data()

    # When the report is rendered
    card = invoice_card(parse(render_report(data)), "inv_held")

    # Then they read in the order the simulator wrote them
    assert event_labels(card)[-4:] == [
        "Payment received",
        "Invoice settled",
        "Order hold released",
        "Lifecycle ended",
    ]


def test_key_details_of_events_are_shown() -> None:
    # Given events with an amount, a recipient language and a reason
    data = report_data()

    # When the report is rendered
    card = invoice_card(parse(render_report(data)), "inv_claimed")
    rows = {row.attrs["data-event"]: row for row in card.find_all("tr", "timeline-entry")}

    # Then the amount is money, the language and reason are named, and a code reads as words
    assert rows["claim_submitted"].find("td", "amt").text() == "€24,980.00"
    assert "Language: fr" in rows["reminder_sent"].text()
    assert "Reason: unpaid 30 days after due date" in rows["finance_escalated"].text()
    assert "Reason: Formal notice" in rows["order_hold_placed"].text()
    assert "Decision: Within limit" in rows["credit_checked"].text()


def test_amounts_are_formatted_as_money_in_each_currency() -> None:
    # Given invoices in euro and pound sterling
    data = report_data()

    # When the report is rendered
    page = parse(render_report(data))

    # Then amounts read as money, and the outstanding total is grouped by currency
    paid = invoice_card(page, "inv_paid")
    assert paid.find("dd", "big").text() == "€1,656.25"
    assert paid.find("dd", "balance").text() == "€0.00"
    assert invoice_card(page, "inv_held").find("dd", "big").text() == "£812.40"
    outstanding = page.find(cls="stats").find_all("div", "v")[-1]
    assert outstanding.text() == "€24,980.00"


def test_the_header_counts_the_run() -> None:
    # Given two paid invoices, one claimed and still open, and one rejected document
    data = report_data()

    # When the report is rendered
    page = parse(render_report(data))

    # Then the totals, the virtual span and the policy's milestones are in the header
    totals = {element.attrs["data-total"]: element.text() for element in page.find_all(cls="v")}
    assert totals["invoices"] == "3"
    assert totals["paid"] == "2"
    assert totals["open"] == "1"
    assert totals["claimed"] == "1"
    assert totals["rejected"] == "1"
    header = page.find("header")
    assert "2025-01-01 to 2025-05-01 (120 days)" in header.text()
    assert "Policy 2025.1" in header.text()
    milestones = [chip.text() for chip in header.find_all("span", "milestone")]
    assert milestones[0] == "Reminder due-5"
    assert milestones[-1] == "Insurance claim due+60"


def test_customers_show_their_hold_now_and_its_history() -> None:
    # Given a customer held now and one whose hold was placed and then released
    data = report_data()

    # When the report is rendered
    page = parse(render_report(data))

    # Then the held customer says so, why, and for which invoice
    held = customer_card(page, "cust_dupont")
    assert held.find("span", "hold-state").text() == "On hold"
    reason = held.find("li", "hold-reason")
    assert "Formal notice" in reason.text()
    assert reason.find("a").text() == "FR-88812"
    assert reason.find("a").attrs["href"] == "#" + invoice_card(page, "inv_claimed").attrs["id"]
    # And the released customer is not held, with the placement and the release in order
    released = customer_card(page, "cust_brit")
    assert released.find("span", "hold-state").text() == "Not on hold"
    changes = released.find_all("li", "hold-change")
    assert [change.attrs["data-event"] for change in changes] == ["placed", "released"]
    assert changes[1].text().startswith("2025-02-22 11:00 UTC")


def test_rejected_documents_show_the_answer_their_sender_got() -> None:
    # Given a document rejected for a missing field
    data = report_data()

    # When the report is rendered
    rows = parse(render_report(data)).find("table", "rejections").find_all("tr", "rejection")

    # Then its file, HTTP status, reason and field problems are listed
    assert len(rows) == 1
    row = rows[0]
    assert "inbox/canonical/broken.json" in row.text()
    assert row.find("span", "status").text() == "422"
    assert row.find(cls="message").text() == "The invoice does not match the canonical schema"
    assert [problem.text() for problem in row.find_all("li", "problem")] == [
        "customer.id Field required"
    ]


def test_emails_are_linked_to_their_eml_files() -> None:
    # Given e-mails sent for two of the invoices
    data = report_data()

    # When the report is rendered
    page = parse(render_report(data))

    # Then each invoice links its own e-mails by relative path, in the order they were sent
    claimed_links = [
        link.attrs["href"]
        for link in invoice_card(page, "inv_claimed").find(cls="emails").find_all("a")
    ]
    assert claimed_links == [
        "outbox/0002-reminder-inv_claimed.eml",
        "outbox/0003-formal_notice-inv_claimed.eml",
    ]
    paid_links = [link.attrs["href"] for link in invoice_card(page, "inv_paid").find_all("a")]
    assert paid_links == ["outbox/0001-reminder-inv_paid.eml"]
    assert invoice_card(page, "inv_held").find_all("li", "email") == []


def test_a_file_name_cannot_become_a_link_to_a_script() -> None:
    # Given an e-mail whose file name looks like a URL with a scheme
    rogue = email(9, "reminder", "inv_paid", at(PAID_DUE)).model_copy(
        update={"file": "javascript:alert(1)"}
    )
    data = report_data(emails=[rogue])

    # When the report is rendered
    link = invoice_card(parse(render_report(data)), "inv_paid").find(cls="emails").find("a")

    # Then the link stays a relative path
    assert link.attrs["href"] == "javascript%3Aalert%281%29"
    assert link.text() == "javascript:alert(1)"


def test_markup_in_names_and_numbers_is_shown_as_text() -> None:
    # Given an invoice number and a customer name that contain markup
    data = report_data()

    # When the report is rendered
    html = render_report(data)
    page = parse(html)

    # Then the markup is escaped: it reads as text and no element is made from it
    assert "<b>x</b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert invoice_card(page, "inv_held").find("h3", "invoice-number").text() == "<b>x</b>"
    assert (
        customer_card(page, "cust_dupont").find("h3").text().startswith("Dupont & Fils <b>SARL</b>")
    )
    assert not any(element.text() in {"x", "SARL"} for element in page.find_all("b"))


def test_the_page_needs_nothing_from_outside() -> None:
    # Given a whole run
    data = report_data()

    # When the report is rendered
    page = parse(render_report(data))

    # Then it has no script, stylesheet, image or frame of its own to fetch
    for element in page.iter():
        assert element.tag not in {"script", "link", "img", "iframe"}
        for name in ("src", "href"):
            assert not element.attrs.get(name, "").startswith(("http:", "https:", "//"))


def test_unknown_events_and_events_without_an_invoice_are_still_shown() -> None:
    # Given an event the report has no label for, and a rejection event with no invoice
    extra = [
        entry("inv_paid", at(PAID_DUE), "payment_plan_offered", instalments=3),
        TimelineEntry(
            at=at(date(2025, 1, 20), 12),
            event="invoice_rejected",
            detail={"file": "inbox/canonical/broken.json"},
        ),
    ]
    data = report_data(timeline=paid_timeline() + extra)

    # When the report is rendered
    page = parse(render_report(data))

    # Then the unknown event reads as words, in its place in time
    labels = event_labels(invoice_card(page, "inv_paid"))
    assert labels.index("Payment plan offered") == labels.index("Payment reminder sent") + 1
    # And the event without an invoice has a card of its own
    unattached = page.find("article", "unattached")
    assert event_labels(unattached) == ["Document rejected"]
    assert "File: inbox/canonical/broken.json" in unattached.text()


def test_naive_times_are_refused() -> None:
    # Given a timeline entry whose time has no timezone
    naive = datetime(2025, 1, 1, 9, 0)

    # When it is validated, Then it is refused: every time on the page is read in UTC
    with pytest.raises(ValidationError):
        TimelineEntry(invoice_id="inv_paid", at=naive, event="invoice_received")


def test_write_report_writes_the_page(tmp_path: Path) -> None:
    # Given a run and a folder that does not exist yet
    target = tmp_path / "out" / "report.html"

    # When the report is written
    write_report(report_data(), target)

    # Then the page is there, whole
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
