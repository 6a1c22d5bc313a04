"""Credit scoring: expected outcomes worked out by hand from the default scoring policy.

Default policy, used for every hand calculation below:
- weights report 0.5, behaviour 0.3, outlook 0.2 (without history: report and outlook only,
  divided by 0.7); the score rounds half up;
- grades A from 80, B from 65, C from 50, D from 35, E below;
- decisions A/B approve, C shorter terms (14 days), D collateral, E decline;
- limit = min(recommended x fraction, 100 000), fractions A 1, B 0.75, C 0.5, D 0.25, E 0;
- behaviour = mean of on-time rate x 100, 100 x (1 - average days late / 60) and
  100 x (1 - max(worst days late, oldest open overdue days) / 60), each floored at 0;
- outlook = (5 - rating) x 25;
- reports older than 180 days are stale; reviews step 25 %; concern from 30 days overdue.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from arflow.logic.scoring import (
    NEUTRAL_OUTLOOK_RATING,
    OutlookTableError,
    SettledInvoiceFacts,
    assess,
    behaviour_from_history,
    default_outlook_table,
    load_outlook_table,
    normalise_industry_code,
    report_is_stale,
    review_limit,
)
from arflow.models.credit import (
    CreditDecision,
    CreditReport,
    CreditScoringPolicy,
    DecisionKind,
    Grade,
    LimitReview,
    Outlook,
    PaymentBehaviour,
)

TODAY = date(2026, 9, 1)
NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
POLICY = CreditScoringPolicy()
NEW_CUSTOMER_LIMIT = Decimal("20000")
REVIEW_AFTER_DAYS = 90


def make_report(**overrides: object) -> CreditReport:
    fields: dict[str, object] = {
        "customer_id": "cus-7",
        "provider": "Acme Credit",
        "reference": "AC-2026-0815",
        "grade": None,
        "score": 88,
        "recommended_limit": Decimal("80000"),
        "currency": "EUR",
        "report_date": date(2026, 8, 1),
    }
    fields.update(overrides)
    return CreditReport.model_validate(fields)


def make_behaviour(
    settled: int = 12,
    on_time: int = 12,
    average: str = "0",
    worst: int = 0,
    **overrides: object,
) -> PaymentBehaviour:
    fields: dict[str, object] = {
        "window_days": 365,
        "invoices_settled": settled,
        "invoices_on_time": on_time,
        "on_time_rate": Decimal(on_time) / settled if settled else None,
        "average_days_late": Decimal(average),
        "worst_days_late": worst,
        "currency": "EUR",
        "first_invoice_on": date(2025, 1, 15),
    }
    fields.update(overrides)
    return PaymentBehaviour.model_validate(fields)


def no_history() -> PaymentBehaviour:
    return make_behaviour(settled=0, on_time=0, first_invoice_on=None)


def make_outlook(rating: int) -> Outlook:
    return Outlook(
        industry_code="F41",
        country="FR",
        rating=rating,
        source="test outlook table",
        note="Construction",
        matched_row="F/*",
    )


def run_assess(
    report: CreditReport | None,
    behaviour: PaymentBehaviour,
    rating: int,
    exposure: str = "10000",
    current_limit: Decimal | None = None,
    is_new_customer: bool = False,
    policy: CreditScoringPolicy = POLICY,
    provider_error: str | None = None,
) -> CreditDecision:
    return assess(
        report=report,
        behaviour=behaviour,
        outlook=make_outlook(rating),
        exposure_after_invoice=Decimal(exposure),
        current_limit=current_limit,
        is_new_customer=is_new_customer,
        new_customer_limit=NEW_CUSTOMER_LIMIT,
        policy=policy,
        policy_version="policy-7",
        now=NOW,
        provider_error=provider_error,
    )


def reason_with(decision: CreditDecision | LimitReview, fragment: str) -> str:
    matching: list[str] = [reason for reason in decision.reasons if fragment in reason]
    assert matching, f"no reason mentions {fragment!r}: {decision.reasons}"
    return matching[0]


# Decisions by grade.


@dataclass(frozen=True)
class GradeCase:
    name: str
    report_score: int
    behaviour: PaymentBehaviour
    rating: int
    recommended: str
    score: int
    grade: Grade
    kind: DecisionKind
    limit: str
    terms: int | None
    collateral: bool


GRADE_CASES = [
    # Strong established buyer: behaviour 100 (all on time); outlook (5-2)x25 = 75;
    # 0.5x88 + 0.3x100 + 0.2x75 = 44 + 30 + 15 = 89 -> A -> approve;
    # limit min(80 000 x 1, 100 000) = 80 000.
    GradeCase(
        "strong buyer", 88, make_behaviour(), 2, "80000", 89, Grade.A, DecisionKind.APPROVE,
        "80000.00", None, False,
    ),
    # The same buyer with a recommendation above the policy maximum:
    # limit min(150 000 x 1, 100 000) = 100 000.
    GradeCase(
        "strong buyer at the policy maximum", 88, make_behaviour(), 2, "150000", 89, Grade.A,
        DecisionKind.APPROVE, "100000.00", None, False,
    ),
    # Grade B: 0.5x70 + 0.3x100 + 0.2x50 = 35 + 30 + 10 = 75 -> B -> approve;
    # limit 80 000 x 0.75 = 60 000.
    GradeCase(
        "grade B", 70, make_behaviour(), 3, "80000", 75, Grade.B, DecisionKind.APPROVE,
        "60000.00", None, False,
    ),
    # Grade C: 0.5x50 + 0.3x100 + 0.2x25 = 25 + 30 + 5 = 60 -> C -> shorter terms of 14 days;
    # limit 80 000 x 0.5 = 40 000.
    GradeCase(
        "grade C", 50, make_behaviour(), 4, "80000", 60, Grade.C,
        DecisionKind.APPROVE_SHORTER_TERMS, "40000.00", 14, False,
    ),
    # Grade D: behaviour 8 of 10 on time (80), average 6 days (90), worst 24 days (60):
    # mean 76.67 -> 77; 0.5x30 + 0.3x77 + 0.2x25 = 15 + 23.1 + 5 = 43.1 -> 43 -> D ->
    # collateral; limit 80 000 x 0.25 = 20 000.
    GradeCase(
        "grade D", 30, make_behaviour(10, 8, "6", 24), 4, "80000", 43, Grade.D,
        DecisionKind.APPROVE_WITH_COLLATERAL, "20000.00", None, True,
    ),
    # Grade E: behaviour 5 of 10 (50), average 20 days (66.67), worst 60 days (0):
    # mean 38.89 -> 39; 0.5x10 + 0.3x39 + 0.2x0 = 5 + 11.7 = 16.7 -> 17 -> E -> decline; 0.
    GradeCase(
        "grade E", 10, make_behaviour(10, 5, "20", 60), 5, "80000", 17, Grade.E,
        DecisionKind.DECLINE, "0", None, False,
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", GRADE_CASES, ids=lambda case: case.name)
def test_the_grade_decides_the_terms_and_the_fraction_of_the_recommended_limit(
    case: GradeCase,
) -> None:
    # Given an established buyer with a recent report, its history and its outlook
    report = make_report(score=case.report_score, recommended_limit=Decimal(case.recommended))

    # When it is assessed under the default policy
    decision = run_assess(report, case.behaviour, case.rating)

    # Then score, grade, decision, limit and terms are the ones the policy rules give
    assert (decision.score, decision.grade, decision.kind) == (case.score, case.grade, case.kind)
    assert decision.credit_limit == Decimal(case.limit)
    assert decision.payment_terms_days == case.terms
    assert decision.collateral_required is case.collateral
    assert decision.reasons[0].startswith("decision: ")
    assert f"grade {case.grade}, score {case.score}" in decision.reasons[0]


def test_a_new_buyer_with_a_good_report_is_approved_up_to_the_new_customer_limit() -> None:
    # Given a new buyer: a report scoring 88 recommending 80 000, no payment history, outlook 2
    # Expected: no behaviour, so (0.5x88 + 0.2x75) / 0.7 = 59 / 0.7 = 84.29 -> 84 -> A ->
    # approve; limit min(80 000 x 1, 100 000) = 80 000, capped at the new customer limit 20 000.
    report = make_report()

    # When it is assessed as a new customer
    decision = run_assess(report, no_history(), 2, exposure="5000", is_new_customer=True)

    # Then it is approved, its limit the new-customer cap, and the reasons say why
    assert (decision.kind, decision.score, decision.grade) == (DecisionKind.APPROVE, 84, Grade.A)
    assert decision.subscores.behaviour is None
    assert decision.evidence_limit == Decimal("80000.00")
    assert decision.credit_limit == Decimal("20000.00")
    reason_with(decision, "new customer's first limit is capped at EUR 20,000.00")
    reason_with(decision, "no invoice settled in the last 365 days: payment behaviour not scored")
    assert not decision.exposure_over_limit


def test_an_assessment_does_not_raise_an_existing_limit() -> None:
    # Given a strong buyer (89, A, evidence 80 000) whose current limit is 50 000
    report = make_report()

    # When it is assessed
    decision = run_assess(report, make_behaviour(), 2, current_limit=Decimal("50000"))

    # Then the limit stays at 50 000: only a limit review raises it
    assert decision.kind is DecisionKind.APPROVE
    assert decision.credit_limit == Decimal("50000")
    reason_with(decision, "an assessment does not raise a limit")


def test_the_decision_for_a_grade_is_configurable() -> None:
    # Given a policy that refers grade D instead of asking for collateral
    policy = CreditScoringPolicy.model_validate(
        {"decision_by_grade": {"A": "approve", "B": "approve", "C": "approve_shorter_terms",
                               "D": "refer", "E": "decline"}}
    )  # fmt: skip

    # When the grade D buyer of the table (score 43) is assessed, currently without a limit
    decision = run_assess(make_report(score=30), make_behaviour(10, 8, "6", 24), 4, policy=policy)

    # Then it is referred and granted nothing until finance decides
    assert (decision.grade, decision.kind) == (Grade.D, DecisionKind.REFER)
    assert decision.credit_limit == 0
    assert not decision.collateral_required
    reason_with(decision, "no credit is granted until finance decides")


def test_a_report_grade_counts_when_the_report_gives_no_score() -> None:
    # Given a report with grade B and no score: the policy counts B as 72
    # Expected: 0.5x72 + 0.3x100 + 0.2x50 = 36 + 30 + 10 = 76 -> B
    report = make_report(grade="B", score=None)

    # When the buyer is assessed
    decision = run_assess(report, make_behaviour(), 3)

    # Then the grade's score was used
    assert (decision.subscores.report, decision.score, decision.grade) == (72, 76, Grade.B)
    reason_with(decision, "grade B (no score; the policy counts the grade as 72)")


# Behaviour drags the grade.


def test_poor_payment_behaviour_drags_the_grade_down() -> None:
    # Given the same report (72) and outlook (3 -> 50) for two buyers
    # Expected good payer: behaviour 100; 36 + 30 + 10 = 76 -> B -> approve.
    # Expected poor payer: 5 of 10 on time (50), average 15 days (75), worst 60 days (0):
    # behaviour 41.67 -> 42; 36 + 12.6 + 10 = 58.6 -> 59 -> C -> shorter terms.
    report = make_report(score=72)
    poor = make_behaviour(10, 5, "15", 60)

    # When both are assessed
    good_decision = run_assess(report, make_behaviour(), 3)
    poor_decision = run_assess(report, poor, 3)

    # Then the poor payer falls a grade, to shorter terms
    assert (good_decision.score, good_decision.grade) == (76, Grade.B)
    assert poor_decision.subscores.behaviour == 42
    assert (poor_decision.score, poor_decision.grade) == (59, Grade.C)
    assert poor_decision.kind is DecisionKind.APPROVE_SHORTER_TERMS


def test_an_open_overdue_invoice_counts_as_lateness() -> None:
    # Given a buyer that paid all 12 invoices on time but has one open invoice 45 days past due
    # Expected behaviour: on time 100, average 100, worst max(0, 45) -> 100 x (1 - 45/60) = 25;
    # mean 75.
    behaviour = make_behaviour(
        open_overdue_amount=Decimal("5000"), open_overdue_invoices=1, oldest_overdue_days=45
    )

    # When it is assessed
    decision = run_assess(make_report(), behaviour, 2)

    # Then the overdue invoice costs it behaviour points, and the reasons name it
    assert decision.subscores.behaviour == 75
    reason_with(decision, "1 open invoice past due, the oldest by 45 days, EUR 5,000.00")


def test_an_overdue_first_invoice_is_scored_without_any_settled_history() -> None:
    # Given a new buyer with nothing settled yet and its first invoice 15 days past due
    # Expected behaviour: only worst lateness, 100 x (1 - 15/60) = 75;
    # 0.5x88 + 0.3x75 + 0.2x75 = 44 + 22.5 + 15 = 81.5 -> 82 (without it: 84).
    behaviour = make_behaviour(
        settled=0,
        on_time=0,
        open_overdue_amount=Decimal("4000"),
        open_overdue_invoices=1,
        oldest_overdue_days=15,
    )

    # When it is assessed
    decision = run_assess(make_report(), behaviour, 2, is_new_customer=True)

    # Then the overdue invoice is scored as behaviour
    assert decision.subscores.behaviour == 75
    assert decision.score == 82


# Rules that override the grade.


def test_an_insolvency_flag_declines_credit_whatever_the_score() -> None:
    # Given the strong buyer's report (89, A) flagging insolvency proceedings
    report = make_report(risk_flags=["insolvency_proceedings"])

    # When it is assessed
    decision = run_assess(report, make_behaviour(), 2, current_limit=Decimal("30000"))

    # Then the flag declines credit: no limit, and the reasons name the flag
    assert (decision.grade, decision.kind) == (Grade.A, DecisionKind.DECLINE)
    assert decision.credit_limit == 0
    reason_with(decision, "report from Acme Credit flags insolvency_proceedings: decline credit")


def test_a_payment_defaults_flag_refers_and_keeps_the_current_limit() -> None:
    # Given the strong buyer's report flagging payment defaults, current limit 30 000
    report = make_report(risk_flags=["payment_defaults"])

    # When it is assessed
    decision = run_assess(report, make_behaviour(), 2, current_limit=Decimal("30000"))

    # Then it is referred, and the limit stays as it is until finance decides
    assert decision.kind is DecisionKind.REFER
    assert decision.credit_limit == Decimal("30000")
    reason_with(decision, "the limit stays at EUR 30,000.00 until finance decides")


def test_a_flag_the_policy_does_not_know_is_noted_not_scored() -> None:
    # Given the strong buyer's report with a flag no policy rule covers
    report = make_report(risk_flags=["recent_address_change"])

    # When it is assessed
    decision = run_assess(report, make_behaviour(), 2)

    # Then the decision is the grade's, and the flag is named in the reasons
    assert decision.kind is DecisionKind.APPROVE
    reason_with(decision, "flags recent_address_change, which the policy has no rule for")


# No report, no approval.


def test_a_provider_outage_refers_to_finance_and_names_the_outage() -> None:
    # Given a new buyer whose report could not be fetched
    error = "Acme Credit API timed out after 10 s"

    # When it is assessed without a report
    decision = run_assess(
        None, no_history(), 2, exposure="5000", is_new_customer=True, provider_error=error
    )

    # Then nothing is approved by default: refer, no score, no credit, the outage in the reasons
    assert decision.kind is DecisionKind.REFER
    assert (decision.score, decision.grade, decision.evidence_limit) == (None, None, None)
    assert decision.credit_limit == 0
    assert decision.exposure_over_limit
    reason_with(decision, f"the provider is unavailable ({error})")
    reason_with(decision, "an outage never approves credit by default")


def test_a_buyer_nobody_assessed_gets_no_credit() -> None:
    # Given no report and no provider error
    # When the buyer is assessed
    decision = run_assess(None, no_history(), 2, is_new_customer=True)

    # Then it is referred for want of an assessment
    assert decision.kind is DecisionKind.REFER
    assert decision.credit_limit == 0
    reason_with(decision, "no credit report on the buyer")


@pytest.mark.parametrize(
    ("age_days", "stale"),
    [
        # The policy's maximum is 180 days: a report exactly that old may still be used.
        (0, False),
        (180, False),
        (181, True),
    ],
)
def test_report_is_stale_past_the_policy_maximum_age(age_days: int, stale: bool) -> None:
    # Given a report of a given age
    report = make_report(report_date=TODAY - timedelta(days=age_days))

    # When its staleness is checked
    # Then it is stale only past 180 days
    assert report_is_stale(report, TODAY, POLICY) is stale


def test_a_missing_report_must_be_fetched() -> None:
    # Given no report at all
    # When its staleness is checked
    # Then it counts as stale, so that the caller fetches one
    assert report_is_stale(None, TODAY, POLICY) is True


def test_a_stale_report_is_referred_as_if_missing() -> None:
    # Given the strong buyer's report, 243 days old (2026-01-01 to 2026-09-01)
    report = make_report(report_date=date(2026, 1, 1))

    # When it is assessed
    decision = run_assess(report, make_behaviour(), 2, current_limit=Decimal("30000"))

    # Then it is referred, the report's age and the maximum in the reasons
    assert decision.kind is DecisionKind.REFER
    assert decision.score is None
    assert decision.credit_limit == Decimal("30000")
    reason_with(decision, "dated 2026-01-01 is 243 days old, over the policy's 180-day maximum")


def test_a_stale_report_whose_refresh_failed_names_the_failure() -> None:
    # Given a 243-day-old report that could not be refreshed
    report = make_report(report_date=date(2026, 1, 1))

    # When the buyer is assessed
    decision = run_assess(report, make_behaviour(), 2, provider_error="HTTP 503")

    # Then it is referred, naming both the age and the failed refresh
    assert decision.kind is DecisionKind.REFER
    reason_with(decision, "243 days old")
    reason_with(decision, "refreshing it failed: HTTP 503")


def test_a_recent_report_is_used_when_a_refresh_failed() -> None:
    # Given a report within the maximum age, and an error from the provider on refreshing
    # When the buyer is assessed
    decision = run_assess(make_report(), make_behaviour(), 2, provider_error="HTTP 503")

    # Then the report is used, and the error is still on record
    assert decision.kind is DecisionKind.APPROVE
    reason_with(decision, "the credit report provider reported an error (HTTP 503)")


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"recommended_limit": None, "currency": None}, "recommends no limit"),
        ({"currency": "USD"}, "recommends a limit in USD and the invoice is in EUR"),
        ({"score": None, "grade": "BBB+"}, "neither a score nor a grade the policy can read"),
    ],
)
def test_a_report_that_cannot_set_a_limit_is_referred(
    overrides: dict[str, object], problem: str
) -> None:
    # Given the strong buyer's report without a usable limit or score
    report = make_report(**overrides)

    # When it is assessed
    decision = run_assess(report, make_behaviour(), 2)

    # Then it is referred, saying what is missing
    assert decision.kind is DecisionKind.REFER
    assert decision.credit_limit == 0
    reason_with(decision, problem)


# Exposure and reasons.


def test_exposure_above_the_limit_is_in_the_reasons() -> None:
    # Given the grade B buyer (limit 80 000 x 0.75 = 60 000) and exposure of 65 000
    report = make_report(score=70)

    # When it is assessed
    decision = run_assess(report, make_behaviour(), 3, exposure="65000")

    # Then the decision says the exposure is over the limit, and by how much
    assert decision.credit_limit == Decimal("60000.00")
    assert decision.exposure_over_limit
    reason_with(
        decision,
        "exposure of EUR 65,000.00 with this invoice is over the credit limit of"
        " EUR 60,000.00 by EUR 5,000.00",
    )


def test_exposure_within_the_limit_raises_no_alarm() -> None:
    # Given the grade B buyer (limit 60 000) and exposure of exactly 60 000
    # When it is assessed
    decision = run_assess(make_report(score=70), make_behaviour(), 3, exposure="60000")

    # Then the exposure is within the limit
    assert not decision.exposure_over_limit
    assert not [reason for reason in decision.reasons if reason.startswith("exposure")]


def test_every_reason_names_its_evidence() -> None:
    # Given a report (grade B, score 72), 9 of 10 invoices on time (worst 12 days late) and
    # construction in France (outlook 4)
    report = make_report(grade="B", score=72, recommended_limit=Decimal("50000"))
    behaviour = make_behaviour(10, 9, "1.2", 12)

    # When the buyer is assessed
    decision = run_assess(report, behaviour, 4)

    # Then each dimension's reason names its source and figures, and the decision keeps them
    reason_with(decision, "report from Acme Credit dated 2026-08-01: grade B, score 72")
    reason_with(decision, "paid 9 of 10 invoices on time in the last 365 days; worst 12 days late")
    reason_with(decision, "Construction (F41) in FR: outlook 4 of 5 (higher risk)")
    assert decision.inputs.report == report
    assert decision.inputs.behaviour == behaviour
    assert decision.policy_version == "policy-7"
    assert decision.decided_at == NOW


def test_a_naive_time_is_refused() -> None:
    # Given a time without a timezone
    naive = datetime(2026, 9, 1, 10, 0)

    # When an assessment is asked for at that time
    # Then it is refused rather than guessed
    with pytest.raises(ValueError, match="naive"):
        assess(
            make_report(), make_behaviour(), make_outlook(2), Decimal(0), None, False,
            NEW_CUSTOMER_LIMIT, POLICY, "policy-7", naive,
        )  # fmt: skip


# Payment behaviour from history.


def facts(
    invoice_id: str,
    due: str,
    settled: str | None,
    balance: str = "0",
    currency: str = "EUR",
    issued: str | None = None,
) -> SettledInvoiceFacts:
    due_date = date.fromisoformat(due)
    return SettledInvoiceFacts(
        invoice_id=invoice_id,
        issue_date=date.fromisoformat(issued) if issued else due_date - timedelta(days=30),
        due_date=due_date,
        settled_on=date.fromisoformat(settled) if settled else None,
        balance=Decimal(balance),
        currency=currency,
    )


def test_behaviour_counts_the_window_and_the_open_overdue_invoices() -> None:
    # Given a year of invoices up to 2026-09-01
    invoices = [
        # settled before the window (2025-09-01 excluded): only the first invoice date counts
        facts("i1", "2025-07-01", "2025-07-01", issued="2025-06-01"),
        facts("i2", "2026-01-31", "2026-01-30"),  # on time
        facts("i3", "2026-03-31", "2026-04-12"),  # 12 days late
        facts("i4", "2026-05-31", "2026-05-31"),  # on time, paid on the due date
        facts("i5", "2026-06-30", "2026-07-30"),  # 30 days late
        facts("i9", "2026-07-15", "2026-07-10"),  # on time
        facts("i6", "2026-08-02", None, "1500"),  # open, 30 days past due
        facts("i7", "2026-09-01", None, "900"),  # open, due today: not overdue
        facts("i8", "2026-08-20", None, "200", currency="USD"),  # open, 12 days past due, USD
    ]

    # When the behaviour is measured in EUR over 365 days
    behaviour = behaviour_from_history(invoices, TODAY, 365, "EUR")

    # Then 3 of the 5 settled in the window were on time, 42 / 5 = 8.4 days late on average,
    # worst 30; two invoices are overdue, the oldest by 30 days; EUR 1 500 of it in EUR
    assert (behaviour.invoices_settled, behaviour.invoices_on_time) == (5, 3)
    assert behaviour.on_time_rate == Decimal("0.6")
    assert behaviour.average_days_late == Decimal("8.4")
    assert behaviour.worst_days_late == 30
    assert (behaviour.open_overdue_invoices, behaviour.oldest_overdue_days) == (2, 30)
    assert behaviour.open_overdue_amount == Decimal("1500")
    assert behaviour.first_invoice_on == date(2025, 6, 1)
    assert behaviour.window_days == 365


def test_behaviour_without_history_has_no_on_time_rate() -> None:
    # Given a buyer with no invoices
    # When its behaviour is measured
    behaviour = behaviour_from_history([], TODAY, 365, "EUR")

    # Then there is no rate and no first invoice, and nothing is overdue
    assert behaviour.on_time_rate is None
    assert behaviour.invoices_settled == 0
    assert behaviour.first_invoice_on is None
    assert behaviour.open_overdue_amount == 0


def test_a_settlement_dated_after_today_still_counts_as_open() -> None:
    # Given an invoice due 10 days ago whose settlement is dated tomorrow
    invoices = [facts("i1", "2026-08-22", "2026-09-02", "700")]

    # When the behaviour is measured today
    behaviour = behaviour_from_history(invoices, TODAY, 365, "EUR")

    # Then it is an open overdue invoice, not a settled one
    assert behaviour.invoices_settled == 0
    assert (behaviour.open_overdue_invoices, behaviour.oldest_overdue_days) == (1, 10)


# The outlook table.

TABLE = """\
# A test table: the ratings mean nothing.
industry_code,country,rating,note
F,*,4,Construction
F41,*,3,Construction of buildings
F,FR,5,Construction in FR
*,DE,2,Anything in DE
C,*,3,"Manufacturing, all kinds"
"""


@pytest.mark.parametrize(
    ("industry", "country", "rating", "row"),
    [
        # The longest matching code wins, before the country: F41 beats F in FR.
        ("F41.20", "FR", 3, "F41/*"),
        # Same industry row length: the exact country beats '*'.
        ("F43", "FR", 5, "F/FR"),
        # A section prefix at any country.
        ("F43", "IT", 4, "F/*"),
        # A numeric code is filed under its section: 41.20 is in F.
        ("41.20", "IT", 3, "F41/*"),
        # Case and dots do not matter.
        ("f41", "fr", 3, "F41/*"),
        # No industry row: the wildcard industry for the country.
        ("K64", "DE", 2, "*/DE"),
    ],
)
def test_outlook_lookup_takes_the_most_specific_row(
    industry: str, country: str, rating: int, row: str
) -> None:
    # Given a table with sections, a division, a country override and a wildcard industry
    table = load_outlook_table(TABLE, "test table")

    # When a buyer's industry and country are looked up
    outlook = table.lookup(industry, country)

    # Then the most specific row gives the rating
    assert (outlook.rating, outlook.matched_row) == (rating, row)
    assert outlook.source == "test table"


@pytest.mark.parametrize(("industry", "country"), [("K64", "IT"), (None, None), ("F41", None)])
def test_outlook_lookup_without_a_row_is_neutral(industry: str | None, country: str | None) -> None:
    # Given the table without a F row at '*' or a K row: only its country rows remain
    table = load_outlook_table(
        "industry_code,country,rating,note\nF,FR,5,Construction\n*,DE,2,Anything\n"
    )

    # When an industry and country it has no row for are looked up
    outlook = table.lookup(industry, country)

    # Then the rating is the neutral default, and the assessment says so
    assert outlook.rating == NEUTRAL_OUTLOOK_RATING == 3
    assert outlook.matched_row is None
    decision = assess(
        make_report(), make_behaviour(), outlook, Decimal(0), None, False, NEW_CUSTOMER_LIMIT,
        POLICY, "policy-7", NOW,
    )  # fmt: skip
    assert decision.subscores.outlook == 50
    reason_with(decision, "counted as neutral, 3 of 5")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("industry,country,rating\nF,*,4\n", "line 1: the header must be"),
        ("industry_code,country,rating,note\nF,*,6,Construction\n", "line 2: rating '6'"),
        ("industry_code,country,rating,note\nF,FRA,4,Construction\n", "line 2: country 'FRA'"),
        ("industry_code,country,rating,note\nF,*,4\n", "line 2: 3 cells, the header has 4"),
        ("industry_code,country,rating\nF,*,4\n# again\nF,*,3\n", "line 4: F/* is given twice"),
        ("# only a comment\n", "no header row"),
    ],
)
def test_an_unreadable_outlook_table_is_refused_with_its_line(text: str, message: str) -> None:
    # Given a table with a mistake in it
    # When it is loaded
    # Then loading fails, naming the line
    with pytest.raises(OutlookTableError, match=re.escape(message)):
        load_outlook_table(text)


def test_an_outlook_table_loads_from_a_file(tmp_path: Path) -> None:
    # Given the test table written to a file
    path = tmp_path / "insurer_outlook.csv"
    path.write_text(TABLE, encoding="utf-8")

    # When it is loaded by path
    table = load_outlook_table(path)

    # Then its rows are read and the file names the source
    assert table.source == "insurer_outlook.csv"
    assert table.lookup("C25", "IT").note == "Manufacturing, all kinds"


def test_the_default_outlook_table_covers_every_nace_section_and_says_it_is_illustrative() -> None:
    # Given the table shipped with arflow
    shipped = Path(__file__).resolve().parents[2] / "functions" / "arflow" / "data" / "outlook.csv"

    # When it is loaded
    table = default_outlook_table()

    # Then every section A to U has a row at any country, and its first line is the warning
    sections = {row.industry_code for row in table.rows if row.country == "*"}
    assert {chr(code) for code in range(ord("A"), ord("U") + 1)} <= sections
    first_line = shipped.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("# Illustrative defaults")
    assert table.lookup("F41", "FR").rating == 4


def test_a_numeric_code_outside_every_division_is_left_as_it_is() -> None:
    # Given a division number NACE does not use (04)
    # When it is normalised
    # Then no section is guessed for it
    assert normalise_industry_code("04.10") == "0410"
    assert normalise_industry_code("C 10.1") == "C101"


# Limit reviews.


def review(
    current: str,
    assessment: CreditDecision,
    previous_grade: Grade | None = Grade.A,
) -> LimitReview:
    return review_limit(
        customer_id="cus-7",
        current_limit=Decimal(current),
        assessment=assessment,
        previous_grade=previous_grade,
        policy=POLICY,
        review_after_days=REVIEW_AFTER_DAYS,
        now=NOW,
    )


@dataclass(frozen=True)
class ReviewCase:
    name: str
    current: str
    report: CreditReport
    behaviour: PaymentBehaviour
    rating: int
    previous_grade: Grade | None
    direction: str
    new_limit: str
    because: str


GOOD = make_behaviour()
OVERDUE_45 = make_behaviour(
    open_overdue_amount=Decimal("5000"), open_overdue_invoices=1, oldest_overdue_days=45
)
# 10 of 11 on time (0.909), one paid 35 days late: behaviour (90.91 + 94.70 + 41.67) / 3 = 75.76
# -> 76; score 44 + 22.8 + 15 = 81.8 -> 82 -> A.
LATE_35 = make_behaviour(11, 10, "3.18", 35)
# 8 of 10 on time: behaviour (80 + 96.67 + 83.33) / 3 = 86.67 -> 87; 44 + 26.1 + 15 -> 85 -> A.
EIGHT_OF_TEN = make_behaviour(10, 8, "2", 10)
YOUNG = make_behaviour(first_invoice_on=TODAY - timedelta(days=60))

REVIEW_CASES = [
    # Strong buyer (89, A, evidence 80 000), limit 40 000: one step, 40 000 x 1.25 = 50 000.
    ReviewCase("raise by one step", "40000", make_report(), GOOD, 2, Grade.A, "raised",
               "50000.00", "raised by one step of 25%"),
    # Limit 70 000: a step gives 87 500, the evidence allows 80 000 x 1 = 80 000.
    ReviewCase("raise up to the recommended limit", "70000", make_report(), GOOD, 2, Grade.A,
               "raised", "80000.00", "up to what the evidence supports, EUR 80,000.00"),
    # Recommended 150 000 -> evidence min(150 000, 100 000) = 100 000; limit 90 000: step gives
    # 112 500, the policy maximum allows 100 000.
    ReviewCase("raise up to the policy maximum", "90000",
               make_report(recommended_limit=Decimal("150000")), GOOD, 2, Grade.A, "raised",
               "100000.00", "up to what the evidence supports, EUR 100,000.00"),
    # Already at the evidence: 80 000 = 80 000 x 1.
    ReviewCase("keep at the evidence", "80000", make_report(), GOOD, 2, Grade.A, "kept",
               "80000", "the evidence supports no more than the current limit"),
    # 60 days of history, fewer than the 90 a raise needs.
    ReviewCase("keep a young account", "20000", make_report(), YOUNG, 2, Grade.A, "kept",
               "20000", "60 days of payment history, fewer than the 90"),
    # 8 of 10 on time is below the 90 % a raise needs (still grade A, 85).
    ReviewCase("keep below the on-time rate", "40000", make_report(), EIGHT_OF_TEN, 2, Grade.A,
               "kept", "40000", "a raise needs 90%"),
    # Report 60 with outlook 1: 30 + 30 + 20 = 80 -> A, but the report alone is below B's 65.
    ReviewCase("keep on a weak report", "40000", make_report(score=60), GOOD, 1, Grade.A,
               "kept", "40000", "the report scores 60; a raise needs at least 65"),
    # A payment 35 days late in the window stops the raise but does not lower (grade A, 82).
    ReviewCase("keep after a late payment", "40000", make_report(), LATE_35, 2, Grade.A,
               "kept", "40000", "paid 35 days late in the last 365 days"),
    # An open invoice 45 days past due (grade A, 82): one step down, 40 000 x 0.75 = 30 000.
    ReviewCase("lower after an overdue", "40000", make_report(), OVERDUE_45, 2, Grade.A,
               "lowered", "30000.00", "an open invoice is 45 days past due"),
    # Report 70, outlook 3 -> 75, grade B after A: one step down, 40 000 x 0.75 = 30 000
    # (the evidence, 80 000 x 0.75 = 60 000, is above it).
    ReviewCase("lower after a worse grade", "40000", make_report(score=70), GOOD, 3, Grade.A,
               "lowered", "30000.00", "the grade fell from A to B"),
    # Grade B as before, evidence 60 000 below the 70 000 limit: down to the evidence.
    ReviewCase("lower to the evidence", "70000", make_report(score=70), GOOD, 3, Grade.B,
               "lowered", "60000.00", "the evidence supports at most EUR 60,000.00"),
    # Worse grade and evidence below: a step gives 67 500, the evidence 60 000; the lower wins.
    ReviewCase("lower to the lower of step and evidence", "90000", make_report(score=70), GOOD,
               3, Grade.A, "lowered", "60000.00", "the grade fell from A to B"),
    # An insolvency flag declines: the limit goes to 0.
    ReviewCase("lower to nothing on a decline", "40000",
               make_report(risk_flags=["insolvency_proceedings"]), GOOD, 2, Grade.A, "lowered",
               "0.00", "a fresh assessment declines credit"),
]  # fmt: skip


@pytest.mark.parametrize("case", REVIEW_CASES, ids=lambda case: case.name)
def test_a_limit_review_raises_keeps_or_lowers_by_the_rules(case: ReviewCase) -> None:
    # Given a fresh assessment of the buyer at its current limit
    assessment = run_assess(case.report, case.behaviour, case.rating, "0", Decimal(case.current))

    # When the limit is reviewed
    result = review(case.current, assessment, case.previous_grade)

    # Then the limit moves as the rules say, and the reasons say why
    assert (result.direction, result.new_limit) == (case.direction, Decimal(case.new_limit))
    assert result.old_limit == Decimal(case.current)
    reason_with(result, case.because)
    assert result.next_review_on == TODAY + timedelta(days=REVIEW_AFTER_DAYS)


def test_a_review_during_a_provider_outage_keeps_the_limit() -> None:
    # Given an assessment referred because the report could not be fetched
    assessment = run_assess(
        None, GOOD, 2, "0", Decimal("40000"), provider_error="Acme Credit API timed out"
    )

    # When the limit is reviewed
    result = review("40000", assessment)

    # Then it is kept, and the reason names the outage
    assert (result.direction, result.new_limit) == ("kept", Decimal("40000"))
    reason_with(result, "no raise without an assessment that approves")
    reason_with(result, "the provider is unavailable (Acme Credit API timed out)")


def test_a_review_during_an_outage_still_lowers_after_an_overdue() -> None:
    # Given no report, but an open invoice 45 days past due in arflow's own history
    assessment = run_assess(
        None, OVERDUE_45, 2, "0", Decimal("40000"), provider_error="Acme Credit API timed out"
    )

    # When the limit is reviewed
    result = review("40000", assessment)

    # Then own evidence is enough to lower it one step: 40 000 x 0.75 = 30 000
    assert (result.direction, result.new_limit) == ("lowered", Decimal("30000.00"))


def test_a_zero_limit_is_not_raised_by_a_review() -> None:
    # Given a strong buyer whose limit is 0
    assessment = run_assess(make_report(), GOOD, 2, "0", Decimal("0"))

    # When the limit is reviewed
    result = review("0", assessment)

    # Then it stays 0 for finance to set
    assert (result.direction, result.new_limit) == ("kept", Decimal("0"))
    reason_with(result, "a zero limit is not raised by a review")


def test_a_review_records_its_direction_truthfully() -> None:
    # Given a review whose new limit is above its old one
    # When it is recorded as kept
    # Then the model refuses it
    with pytest.raises(ValidationError, match="is raised"):
        LimitReview(
            customer_id="cus-7",
            old_limit=Decimal("10"),
            new_limit=Decimal("20"),
            currency="EUR",
            direction="kept",
            reasons=[],
            reviewed_at=NOW,
            next_review_on=TODAY,
        )


# The policy and the models.


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"weights": {"report": 0.5, "behaviour": 0.3, "outlook": 0.3}}, "sum to 1"),
        ({"weights": {"report": 0, "behaviour": 0.5, "outlook": 0.5}}, "above 0"),
        ({"grade_bands": {"a": 80, "b": 80, "c": 50, "d": 35}}, "fall strictly"),
        ({"limit_by_grade": {"A": 1, "B": 0.75, "C": 0.5, "D": 0.25}}, "grades E are missing"),
        ({"limit_by_grade": {"A": 0.5, "B": 0.75, "C": 0.5, "D": 0.25, "E": 0}}, "larger fraction"),
        ({"decision_by_grade": {"A": "approve"}}, "grades B, C, D, E are missing"),
        ({"max_report_age_days": 0}, "greater than or equal to 1"),
    ],
)
def test_an_inconsistent_scoring_policy_is_refused(
    document: dict[str, object], message: str
) -> None:
    # Given a policy document with an inconsistency
    # When it is validated
    # Then it is refused with the reason
    with pytest.raises(ValidationError, match=message):
        CreditScoringPolicy.model_validate(document)


def test_a_policy_document_with_other_weights_is_accepted() -> None:
    # Given weights as a YAML document would give them, as floats
    document = {"weights": {"report": 0.6, "behaviour": 0.1, "outlook": 0.3}}

    # When the policy is validated
    policy = CreditScoringPolicy.model_validate(document)

    # Then they are exact decimals that sum to 1
    assert policy.weights.report == Decimal("0.6")
    assert policy.weights.report + policy.weights.behaviour + policy.weights.outlook == 1


def test_every_policy_setting_is_documented() -> None:
    # Given the scoring policy model
    # When its fields are listed
    undocumented = [
        name for name, field in CreditScoringPolicy.model_fields.items() if not field.description
    ]

    # Then each has a description, which the published schema carries
    assert undocumented == []


@pytest.mark.parametrize(
    "fields",
    [
        {"recommended_limit": Decimal("1000"), "currency": None},
        {"score": 101},
        {"currency": "euro"},
    ],
)
def test_a_malformed_report_is_refused(fields: dict[str, object]) -> None:
    # Given a report with a limit and no currency, a score above 100 or a bad currency
    # When it is validated
    # Then it is refused
    with pytest.raises(ValidationError):
        make_report(**fields)


def test_behaviour_cannot_have_more_on_time_invoices_than_settled_ones() -> None:
    # Given behaviour claiming 5 on time out of 4 settled
    # When it is validated
    # Then it is refused
    with pytest.raises(ValidationError, match="cannot exceed"):
        make_behaviour(settled=4, on_time=4, invoices_on_time=5)
