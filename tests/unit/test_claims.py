"""Trade-credit insurance logic: cover, insured loss, indemnity, deadline and the claim pack."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from arflow.logic.claims import (
    ClaimPack,
    NotInsuredError,
    amount_claimed,
    build_claim_pack,
    build_overdue_notification,
    insured_loss,
    is_insured,
    notification_deadline,
)
from arflow.models.claim import (
    ClaimInvoice,
    PackDocumentKind,
    PaymentRecord,
    SentNotice,
    TimelineEvent,
)
from arflow.models.notice import NoticeKind
from arflow.models.policy import InsurancePolicy, Policy

DUE = date(2025, 3, 31)


def make_invoice(**overrides: object) -> ClaimInvoice:
    fields: dict[str, object] = {
        "invoice_id": "inv_0123456789abcdef0123",
        "invoice_number": "F-2025-0042",
        "supplier_id": "sup-1",
        "supplier_name": "Nordkap Tools AB",
        "customer_id": "cus-7",
        "customer_name": "Harbour & Sons <Ltd>",
        "customer_country": "DE",
        "currency": "EUR",
        "total_amount": Decimal("12000.00"),
        "issue_date": date(2025, 3, 1),
        "due_date": DUE,
    }
    fields.update(overrides)
    return ClaimInvoice.model_validate(fields)


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


# Cover.


@pytest.mark.parametrize(
    ("covers_all_buyers", "document_insured", "expected"),
    [
        (True, None, True),
        (True, False, False),
        (False, None, False),
        (False, True, True),
        (True, True, True),
    ],
)
def test_is_insured_follows_the_policy_unless_the_document_says_otherwise(
    covers_all_buyers: bool, document_insured: bool | None, expected: bool
) -> None:
    # Given a policy that does or does not cover every buyer
    policy = Policy(insurance=InsurancePolicy(covers_all_buyers=covers_all_buyers))

    # When the document's own insured flag is taken into account
    covered = is_insured(policy, document_insured)

    # Then the document's flag wins, and the policy decides when it is absent
    assert covered is expected


def test_no_invoice_is_insured_without_an_insurance_policy() -> None:
    # Given a policy with no credit insurance
    policy = Policy(insurance=None)

    # When a document claims to be insured
    covered = is_insured(policy, True)

    # Then it is not: there is no insurer to claim from
    assert covered is False


# Amounts.


@pytest.mark.parametrize(
    ("balance", "cover_limit", "currency", "expected"),
    [
        (Decimal("12000.00"), Decimal("25000"), "EUR", Decimal("12000.00")),
        (Decimal("31000.50"), Decimal("25000"), "EUR", Decimal("25000.00")),
        (Decimal("1234.567"), Decimal("25000"), "EUR", Decimal("1234.57")),
        (Decimal("1500000.4"), Decimal("3000000"), "JPY", Decimal("1500000")),
        (Decimal("4000000"), Decimal("3000000"), "JPY", Decimal("3000000")),
        (Decimal("0"), Decimal("25000"), "EUR", Decimal("0.00")),
        (Decimal("-50.00"), Decimal("25000"), "EUR", Decimal("0.00")),
        (Decimal("500.00"), Decimal("0"), "EUR", Decimal("0.00")),
    ],
)
def test_insured_loss_is_the_balance_capped_by_the_cover(
    balance: Decimal, cover_limit: Decimal, currency: str, expected: Decimal
) -> None:
    # Given an unpaid balance and the buyer's cover
    # When the insured loss is computed
    loss = insured_loss(balance, cover_limit, currency)

    # Then it is the smaller of the two, never negative, in the currency's minor unit
    assert loss == expected
    assert loss.as_tuple().exponent == expected.as_tuple().exponent


@pytest.mark.parametrize(
    ("loss", "indemnity_percent", "currency", "expected"),
    [
        (Decimal("12000.00"), Decimal("90"), "EUR", Decimal("10800.00")),
        (Decimal("899.99"), Decimal("90"), "EUR", Decimal("809.99")),
        # 0.045 rounds half-up to 0.05 (banker's rounding would give 0.04).
        (Decimal("0.05"), Decimal("90"), "EUR", Decimal("0.05")),
        (Decimal("1000.00"), Decimal("85.5"), "EUR", Decimal("855.00")),
        # 11110.5 rounds half-up to 11111 (banker's rounding would give 11110).
        (Decimal("12345"), Decimal("90"), "JPY", Decimal("11111")),
        (Decimal("0.00"), Decimal("90"), "EUR", Decimal("0.00")),
        (Decimal("10.005"), Decimal("100"), "BHD", Decimal("10.005")),
    ],
)
def test_amount_claimed_is_the_indemnity_share_rounded_half_up(
    loss: Decimal, indemnity_percent: Decimal, currency: str, expected: Decimal
) -> None:
    # Given an insured loss and the policy's indemnity percentage
    # When the amount claimed is computed
    claimed = amount_claimed(loss, indemnity_percent, currency)

    # Then it is the share, rounded half-up to the currency's minor unit
    assert claimed == expected
    assert claimed.as_tuple().exponent == expected.as_tuple().exponent


@pytest.mark.parametrize(
    ("loss", "indemnity_percent"),
    [(Decimal("-1"), Decimal("90")), (Decimal("100"), Decimal("0")), (Decimal(1), Decimal(101))],
)
def test_amount_claimed_refuses_impossible_inputs(
    loss: Decimal, indemnity_percent: Decimal
) -> None:
    # Given a negative loss or an indemnity outside (0, 100]
    # When the amount claimed is computed
    # Then it is refused rather than silently claimed
    with pytest.raises(ValueError, match="must"):
        amount_claimed(loss, indemnity_percent, "EUR")


@pytest.mark.parametrize(
    ("due_date", "deadline_days", "expected"),
    [
        (date(2025, 3, 31), 45, date(2025, 5, 15)),
        (date(2025, 12, 15), 30, date(2026, 1, 14)),
        (date(2024, 2, 1), 28, date(2024, 2, 29)),
        (date(2025, 2, 1), 28, date(2025, 3, 1)),
        (date(2025, 1, 1), 1, date(2025, 1, 2)),
    ],
)
def test_notification_deadline_counts_days_from_the_due_date(
    due_date: date, deadline_days: int, expected: date
) -> None:
    # Given a policy's notification deadline in days after the due date
    insurance = InsurancePolicy(overdue_notification_deadline_days=deadline_days)

    # When the deadline of an invoice is computed
    deadline = notification_deadline(due_date, insurance)

    # Then it is that many calendar days after the due date
    assert deadline == expected


# The overdue notification.


def test_overdue_notification_in_time_carries_the_buyer_the_invoice_and_the_deadline() -> None:
    # Given an insured invoice 30 days overdue, and the default 45-day deadline
    invoice = make_invoice()

    # When the insurer is notified
    notification = build_overdue_notification(invoice, Decimal("12000"), at("2025-04-30"), Policy())

    # Then the notification names the buyer and invoice, and says it is in time
    assert notification.customer_id == "cus-7"
    assert notification.invoice_number == "F-2025-0042"
    assert notification.policy_number == "LOCAL-0001"
    assert notification.amount_outstanding == Decimal("12000.00")
    assert notification.days_overdue == 30
    assert notification.deadline == date(2025, 5, 15)
    assert notification.within_deadline is True


def test_overdue_notification_is_late_on_the_suppliers_calendar_not_utcs() -> None:
    # Given a supplier in Tokyo and a notification on the deadline day in UTC, next day in Tokyo
    policy = Policy(timezone="Asia/Tokyo")
    notified_at = datetime(2025, 5, 15, 16, 0, tzinfo=UTC)

    # When the insurer is notified
    notification = build_overdue_notification(make_invoice(), Decimal("12000"), notified_at, policy)

    # Then it is past the deadline, as the supplier's own calendar counts it
    assert notification.deadline == date(2025, 5, 15)
    assert notification.days_overdue == 46
    assert notification.within_deadline is False


@pytest.mark.parametrize(
    ("policy", "document_insured"),
    [(Policy(insurance=None), None), (Policy(), False)],
    ids=["no insurance", "document opts out"],
)
def test_an_uninsured_invoice_has_no_notification_and_no_claim(
    policy: Policy, document_insured: bool | None
) -> None:
    # Given an invoice the policy does not cover
    invoice = make_invoice(insured=document_insured)

    # When a notification or a claim pack is built
    # Then both are refused
    with pytest.raises(NotInsuredError):
        build_overdue_notification(invoice, Decimal("1"), at("2025-04-30"), policy)
    with pytest.raises(NotInsuredError):
        build_claim_pack(
            invoice,
            notices=[],
            letters=[],
            payments=[],
            timeline=[],
            policy=policy,
            prepared_at=at("2025-05-30"),
        )


# The claim pack.


NOTICES = [
    SentNotice(
        kind=NoticeKind.FORMAL_NOTICE,
        sent_at=at("2025-04-15"),
        recipient="ap@harbour.example",
        subject="Formal notice: invoice F-2025-0042",
        s3_key="letters/inv_0123456789abcdef0123/formal_notice.pdf",
    ),
    SentNotice(
        kind=NoticeKind.REMINDER,
        sent_at=at("2025-03-26"),
        recipient="ap@harbour.example",
        subject="Reminder: invoice F-2025-0042 falls due",
        message_id="ses-0001",
    ),
    SentNotice(
        kind=NoticeKind.OVERDUE_NOTICE,
        sent_at=at("2025-04-03"),
        recipient="ap@harbour.example",
        subject="Overdue: invoice F-2025-0042",
        message_id="ses-0002",
    ),
]

PAYMENTS = [
    PaymentRecord(payment_id="pay-2", amount=Decimal("1000.00"), received_at=at("2025-04-20")),
    PaymentRecord(payment_id="pay-1", amount=Decimal("500.004"), received_at=at("2025-04-10")),
]

TIMELINE = [
    TimelineEvent(at=at("2025-04-30"), event="insurer_notified", detail="LOCAL-N-0A1B2C3D"),
    TimelineEvent(at=at("2025-03-01"), event="invoice_received"),
    TimelineEvent(at=at("2025-05-30"), event="claim_prepared"),
]


@pytest.fixture
def pack() -> ClaimPack:
    # Given an insured EUR invoice of 12,000 with 1,500 paid, 60 days overdue
    return build_claim_pack(
        make_invoice(),
        notices=NOTICES,
        letters=["letters/inv_0123456789abcdef0123/formal_notice.pdf"],
        payments=PAYMENTS,
        timeline=TIMELINE,
        policy=Policy(),
        prepared_at=at("2025-05-30"),
    )


def test_claim_pack_claims_the_indemnity_share_of_the_unpaid_balance(pack: ClaimPack) -> None:
    # When the claim pack is built (in the fixture)
    # Then the loss is what is left unpaid and the claim is 90 % of it
    assert pack.amount_paid == Decimal("1500.00")
    assert pack.amount_outstanding == Decimal("10500.00")
    assert pack.cover_limit == Decimal("25000.00")
    assert pack.insured_loss == Decimal("10500.00")
    assert pack.amount_claimed == Decimal("9450.00")
    assert pack.days_overdue == 60
    assert pack.notification_deadline == date(2025, 5, 15)


def test_claim_pack_caps_the_loss_at_the_buyers_named_limit() -> None:
    # Given a buyer with a named limit below the unpaid balance, and a credit note applied
    invoice = make_invoice(amount_credited=Decimal("1000"))

    # When the claim pack is built with that limit
    capped = build_claim_pack(
        invoice,
        notices=[],
        letters=[],
        payments=[],
        timeline=[],
        policy=Policy(),
        prepared_at=at("2025-05-30"),
        cover_limit=Decimal("8000"),
    )

    # Then the loss stops at the limit, and the claim is the indemnity share of it
    assert capped.amount_outstanding == Decimal("11000.00")
    assert capped.insured_loss == Decimal("8000.00")
    assert capped.amount_claimed == Decimal("7200.00")


def test_claim_pack_json_holds_the_amounts_as_strings_and_the_history_in_order(
    pack: ClaimPack,
) -> None:
    # When the manifest is written
    manifest = json.loads(pack.to_json())

    # Then amounts are exact strings, and notices, payments and events are oldest first
    assert manifest["insured_loss"] == "10500.00"
    assert manifest["amount_claimed"] == "9450.00"
    assert manifest["amount_paid"] == "1500.00"
    assert manifest["invoice"]["total_amount"] == "12000.00"
    assert [notice["kind"] for notice in manifest["notices"]] == [
        "reminder",
        "overdue_notice",
        "formal_notice",
    ]
    assert [(p["payment_id"], p["amount"]) for p in manifest["payments"]] == [
        ("pay-1", "500.00"),
        ("pay-2", "1000.00"),
    ]
    assert [event["event"] for event in manifest["timeline"]] == [
        "invoice_received",
        "insurer_notified",
        "claim_prepared",
    ]
    assert manifest["letters"] == ["letters/inv_0123456789abcdef0123/formal_notice.pdf"]


def test_claim_pack_html_shows_amounts_notices_in_order_and_payments(pack: ClaimPack) -> None:
    # When the summary is rendered
    html = pack.to_html()

    # Then the claims handler reads the amounts, with the currency code
    assert "EUR 12,000.00" in html
    assert "EUR 10,500.00" in html
    assert "EUR 9,450.00" in html
    assert "90 %" in html

    # And the notices in the order they were sent
    subjects = [notice.subject for notice in sorted(NOTICES, key=lambda n: n.sent_at)]
    positions = [html.index(subject) for subject in subjects]
    assert positions == sorted(positions)
    assert "message ses-0001" in html

    # And every payment, with its amount
    assert "pay-1" in html
    assert "EUR 500.00" in html
    assert "pay-2" in html
    assert "EUR 1,000.00" in html


def test_claim_pack_html_escapes_what_the_documents_said(pack: ClaimPack) -> None:
    # Given a buyer whose name holds markup (in the fixture)
    # When the summary is rendered
    html = pack.to_html()

    # Then the name is shown as text, not as markup
    assert "Harbour &amp; Sons &lt;Ltd&gt;" in html
    assert "<Ltd>" not in html


def test_claim_pack_jpy_amounts_have_no_minor_unit() -> None:
    # Given an insured JPY invoice above the cover
    invoice = make_invoice(currency="JPY", total_amount=Decimal("4000000"))
    policy = Policy(insurance=InsurancePolicy(discretionary_limit=Decimal("3000000")))

    # When the claim pack is built and rendered
    pack = build_claim_pack(
        invoice,
        notices=[],
        letters=[],
        payments=[],
        timeline=[],
        policy=policy,
        prepared_at=at("2025-05-30"),
    )

    # Then the claim is 90 % of the cover, in whole yen
    assert json.loads(pack.to_json())["amount_claimed"] == "2700000"
    assert "JPY 2,700,000" in pack.to_html()


def test_claim_submission_lists_the_pack_documents(pack: ClaimPack) -> None:
    # When the submission is made from the stored pack
    submission = pack.submission(
        "claims/inv_0123456789abcdef0123/manifest.json",
        summary_key="claims/inv_0123456789abcdef0123/summary.html",
    )

    # Then it carries the amounts and points at every document, stored or inline
    assert submission.amount_claimed == Decimal("9450.00")
    assert submission.insured_loss == Decimal("10500.00")
    assert submission.invoice_total == Decimal("12000.00")
    assert submission.pack_key == "claims/inv_0123456789abcdef0123/manifest.json"
    kinds = [document.kind for document in submission.documents]
    assert kinds == [
        PackDocumentKind.MANIFEST,
        PackDocumentKind.SUMMARY,
        PackDocumentKind.NOTICE,
        PackDocumentKind.NOTICE,
        PackDocumentKind.NOTICE,
        PackDocumentKind.LETTER,
        PackDocumentKind.PAYMENT_HISTORY,
        PackDocumentKind.TIMELINE,
    ]
    notices = submission.documents[2:5]
    assert [document.inline for document in notices[:2]] == [
        "message id ses-0001",
        "message id ses-0002",
    ]
    assert notices[2].key == "letters/inv_0123456789abcdef0123/formal_notice.pdf"
    payment_history = submission.documents[6].inline or ""
    assert [json.loads(line)["payment_id"] for line in payment_history.splitlines()] == [
        "pay-1",
        "pay-2",
    ]
