"""Credit scoring: evidence in, a score, a grade, a decision and a limit out. Pure: no AWS.

Three dimensions are scored 0 to 100, higher is better:

- the external credit report: its own score, or the policy's score for its grade;
- payment behaviour in arflow's own history (`behaviour_from_history`);
- the industry and country outlook, from a rating table (`load_outlook_table`).

The industry and country ratings shipped in `arflow/data/outlook.csv` are illustrative defaults, not
any insurer's or agency's view: users replace them with the ratings of their credit insurer or
rating agency, in the same CSV shape, and load them with `load_outlook_table`.
"""

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from arflow.models.credit import (
    APPROVALS,
    DECISION_SEVERITY,
    GRADE_ORDER,
    AssessmentInputs,
    CreditDecision,
    CreditReport,
    CreditScoringPolicy,
    DecisionKind,
    Grade,
    LimitReview,
    Outlook,
    PaymentBehaviour,
    SubScores,
)
from arflow.models.money import minor_unit

NEUTRAL_OUTLOOK_RATING = 3
"""The rating of an industry and country the outlook table says nothing about."""

DEFAULT_OUTLOOK_SOURCE = "arflow default outlook table (illustrative)"
WILDCARD = "*"
OUTLOOK_COLUMNS = ("industry_code", "country", "rating", "note")

RISK_WORDS = {
    1: "lowest risk",
    2: "low risk",
    3: "medium risk",
    4: "higher risk",
    5: "highest risk",
}

DECISION_WORDS = {
    DecisionKind.APPROVE: "approve with the standard terms",
    DecisionKind.APPROVE_SHORTER_TERMS: "approve with shorter terms",
    DecisionKind.APPROVE_WITH_COLLATERAL: "approve against collateral or prepayment",
    DecisionKind.REFER: "refer to finance",
    DecisionKind.DECLINE: "decline credit",
}

# NACE Rev. 2 and ISIC Rev. 4 share their sections; a purely numeric code is filed under the
# section of its two-digit division so that "41.20" finds the rows of "F41" and "F".
_SECTION_OF_DIVISION: tuple[tuple[int, int, str], ...] = (
    (1, 3, "A"),
    (5, 9, "B"),
    (10, 33, "C"),
    (35, 35, "D"),
    (36, 39, "E"),
    (41, 43, "F"),
    (45, 47, "G"),
    (49, 53, "H"),
    (55, 56, "I"),
    (58, 63, "J"),
    (64, 66, "K"),
    (68, 68, "L"),
    (69, 75, "M"),
    (77, 82, "N"),
    (84, 84, "O"),
    (85, 85, "P"),
    (86, 88, "Q"),
    (90, 93, "R"),
    (94, 96, "S"),
    (97, 98, "T"),
    (99, 99, "U"),
)


_COUNTRY = re.compile(r"[A-Z]{2}")
_RATINGS = frozenset({"1", "2", "3", "4", "5"})


class OutlookTableError(ValueError):
    """An outlook table that cannot be read; the message names the line."""


class SettledInvoiceFacts(BaseModel):
    """What payment behaviour needs to know of one invoice, whatever stores it."""

    model_config = ConfigDict(extra="forbid")

    invoice_id: str
    issue_date: date
    due_date: date
    settled_on: date | None = Field(default=None, description="None while the invoice is open")
    balance: Decimal = Field(description="What is still owed")
    currency: str


# Payment behaviour.


def behaviour_from_history(
    invoices: Sequence[SettledInvoiceFacts], today: date, window_days: int, currency: str
) -> PaymentBehaviour:
    """The buyer's payment record over the `window_days` ending today.

    Invoices settled in the window give the on-time rate and the days late (settled_on - due_date,
    never below 0). Invoices still open and past due give the open overdue amount (in `currency`
    only: amounts are not converted), their number and the oldest one's days past due, however
    long ago they fell due.
    """
    window_start = today - timedelta(days=window_days)

    settled = [
        invoice
        for invoice in invoices
        if invoice.settled_on is not None and window_start < invoice.settled_on <= today
    ]
    days_late = [
        max(0, (invoice.settled_on - invoice.due_date).days)
        for invoice in settled
        if invoice.settled_on is not None
    ]
    on_time = sum(1 for days in days_late if days == 0)

    # A settlement dated after today has not happened yet as far as today is concerned.
    overdue = [
        invoice
        for invoice in invoices
        if (invoice.settled_on is None or invoice.settled_on > today)
        and invoice.due_date < today
        and invoice.balance > 0
    ]
    overdue_amount = sum(
        (invoice.balance for invoice in overdue if invoice.currency == currency), Decimal(0)
    )

    return PaymentBehaviour(
        window_days=window_days,
        invoices_settled=len(settled),
        invoices_on_time=on_time,
        on_time_rate=(
            (Decimal(on_time) / len(settled)).quantize(Decimal("0.0001")) if settled else None
        ),
        average_days_late=(
            (Decimal(sum(days_late)) / len(days_late)).quantize(Decimal("0.01"))
            if days_late
            else Decimal(0)
        ),
        worst_days_late=max(days_late, default=0),
        open_overdue_amount=overdue_amount,
        open_overdue_invoices=len(overdue),
        oldest_overdue_days=max(
            ((today - invoice.due_date).days for invoice in overdue), default=0
        ),
        currency=currency,
        first_invoice_on=min((invoice.issue_date for invoice in invoices), default=None),
    )


# The outlook table.


class OutlookRow(BaseModel):
    """One line of an outlook table, its industry code already normalised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    industry_code: str = Field(description="Normalised code or prefix, or '*'")
    country: str = Field(description="ISO 3166 alpha-2, or '*'")
    rating: int = Field(ge=1, le=5)
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.industry_code}/{self.country}"


class OutlookTable(BaseModel):
    """Outlook ratings by industry code and country; the most specific row wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    rows: tuple[OutlookRow, ...]

    def lookup(self, industry_code: str | None, country: str | None) -> Outlook:
        """The rating of the most specific matching row, or the neutral default if none matches.

        The longest matching industry code wins (the exact code, then its division, then its
        section, then `*`); between rows with the same industry, an exact country beats `*`.
        """
        code = normalise_industry_code(industry_code) if industry_code else None
        country_code = country.strip().upper() if country else None

        best: OutlookRow | None = None
        best_rank = (-1, -1)
        for row in self.rows:
            if row.industry_code == WILDCARD:
                industry_rank = 0
            elif code is not None and code.startswith(row.industry_code):
                industry_rank = len(row.industry_code)
            else:
                continue
            if row.country == WILDCARD:
                country_rank = 0
            elif row.country == country_code:
                country_rank = 1
            else:
                continue
            if (industry_rank, country_rank) > best_rank:
                best, best_rank = row, (industry_rank, country_rank)

        if best is None:
            return Outlook(
                industry_code=industry_code,
                country=country_code,
                rating=NEUTRAL_OUTLOOK_RATING,
                source=self.source,
                note="no rating for this industry and country; neutral default",
            )
        return Outlook(
            industry_code=industry_code,
            country=country_code,
            rating=best.rating,
            source=self.source,
            note=best.note,
            matched_row=best.key,
        )


def normalise_industry_code(code: str) -> str:
    """'F41.20', 'f 41.2' and '41.20' all become a comparable 'F4120'-style string."""
    text = "".join(character for character in code.upper() if character.isalnum())
    if len(text) >= 2 and text[:2].isdigit():
        division = int(text[:2])
        for first, last, section in _SECTION_OF_DIVISION:
            if first <= division <= last:
                return section + text
    return text


def load_outlook_table(source: Path | str, name: str | None = None) -> OutlookTable:
    """An outlook table from a CSV file (a Path) or CSV text (a str).

    Columns `industry_code,country,rating,note` under a header row; `#` lines and blank lines are
    skipped; `*` is any industry or any country; ratings run 1 (lowest risk) to 5.
    """
    if isinstance(source, Path):
        text = source.read_text(encoding="utf-8")
        table_name = name or source.name
    else:
        text = source
        table_name = name or "outlook table"

    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise OutlookTableError(f"{table_name}: no header row")
    header_number, header_line = lines[0]
    header = tuple(cell.strip() for cell in _cells(header_line))
    if header not in (OUTLOOK_COLUMNS, OUTLOOK_COLUMNS[:3]):
        raise OutlookTableError(
            f"{table_name} line {header_number}: the header must be {','.join(OUTLOOK_COLUMNS)}"
        )

    rows: dict[str, OutlookRow] = {}
    for number, line in lines[1:]:
        row = _outlook_row(_cells(line), len(header), f"{table_name} line {number}")
        if row.key in rows:
            raise OutlookTableError(f"{table_name} line {number}: {row.key} is given twice")
        rows[row.key] = row
    return OutlookTable(source=table_name, rows=tuple(rows.values()))


@lru_cache(maxsize=1)
def default_outlook_table() -> OutlookTable:
    """The illustrative table shipped with arflow; replace it with your insurer's ratings."""
    data = resources.files("arflow").joinpath("data").joinpath("outlook.csv")
    return load_outlook_table(data.read_text(encoding="utf-8"), DEFAULT_OUTLOOK_SOURCE)


def _cells(line: str) -> list[str]:
    return next(csv.reader([line]), [])


def _outlook_row(cells: list[str], columns: int, where: str) -> OutlookRow:
    if len(cells) != columns:
        raise OutlookTableError(f"{where}: {len(cells)} cells, the header has {columns}")
    industry, country, rating_text = (cell.strip() for cell in cells[:3])
    note = cells[3].strip() if columns == 4 else ""

    code = WILDCARD if industry == WILDCARD else normalise_industry_code(industry)
    if not code:
        raise OutlookTableError(f"{where}: the industry code is empty")
    country_code = country.upper()
    if country_code != WILDCARD and not _COUNTRY.fullmatch(country_code):
        raise OutlookTableError(f"{where}: country {country!r} is not a two-letter code or '*'")
    if rating_text not in _RATINGS:
        raise OutlookTableError(f"{where}: rating {rating_text!r} is not a whole number 1 to 5")
    return OutlookRow(industry_code=code, country=country_code, rating=int(rating_text), note=note)


# The assessment.


def report_is_stale(report: CreditReport | None, today: date, policy: CreditScoringPolicy) -> bool:
    """Whether a report must be fetched afresh: it is missing or older than the policy allows."""
    if report is None:
        return True
    return (today - report.report_date).days > policy.max_report_age_days


def assess(
    report: CreditReport | None,
    behaviour: PaymentBehaviour,
    outlook: Outlook,
    exposure_after_invoice: Decimal,
    current_limit: Decimal | None,
    is_new_customer: bool,
    new_customer_limit: Decimal,
    policy: CreditScoringPolicy,
    policy_version: str,
    now: datetime,
    provider_error: str | None = None,
) -> CreditDecision:
    """Score the buyer and decide its terms and limit; the reasons name every piece of evidence.

    The decision is in the behaviour's currency, which is the invoice's. An assessment never
    raises an existing limit (a limit review does that, one step at a time) and never approves
    without a usable report. When the exposure is over the limit the reasons say so and
    `exposure_over_limit` is set; the caller places the hold.
    """
    decided_at = _utc(now)
    currency = behaviour.currency
    inputs = AssessmentInputs(
        report=report,
        behaviour=behaviour,
        outlook=outlook,
        exposure_after_invoice=exposure_after_invoice,
        current_limit=current_limit,
        is_new_customer=is_new_customer,
        new_customer_limit=new_customer_limit,
        provider_error=provider_error,
    )
    judgement = _judge(inputs, policy, decided_at.date())
    kind = judgement.kind

    limit_lines: list[str] = []
    if kind is DecisionKind.DECLINE:
        limit = Decimal(0)
    elif kind is DecisionKind.REFER:
        limit = current_limit if current_limit is not None else Decimal(0)
        limit_lines.append(_referral_limit_reason(current_limit, currency))
    else:
        assert report is not None and judgement.grade is not None
        assert judgement.evidence_limit is not None
        limit = judgement.evidence_limit
        limit_lines.append(_evidence_limit_reason(report, judgement.grade, limit, currency, policy))
        if is_new_customer and new_customer_limit < limit:
            limit = _floor_money(new_customer_limit, currency)
            limit_lines.append(
                f"a new customer's first limit is capped at {_money(limit, currency)} until a"
                " limit review after enough payment history"
            )
        if current_limit is not None and current_limit < limit:
            limit = current_limit
            limit_lines.append(
                f"the current limit of {_money(current_limit, currency)} is kept: an assessment"
                " does not raise a limit, a limit review does"
            )

    over_limit = exposure_after_invoice > limit
    if over_limit:
        limit_lines.append(
            f"exposure of {_money(exposure_after_invoice, currency)} with this invoice is over"
            f" the credit limit of {_money(limit, currency)} by"
            f" {_money(exposure_after_invoice - limit, currency)}"
        )

    terms = policy.shorter_terms_days if kind is DecisionKind.APPROVE_SHORTER_TERMS else None
    return CreditDecision(
        kind=kind,
        score=judgement.score,
        grade=judgement.grade,
        subscores=judgement.subscores,
        credit_limit=limit,
        evidence_limit=judgement.evidence_limit,
        currency=currency,
        payment_terms_days=terms,
        collateral_required=kind is DecisionKind.APPROVE_WITH_COLLATERAL,
        exposure_over_limit=over_limit,
        reasons=[_headline(judgement, terms), *judgement.explanation, *limit_lines],
        inputs=inputs,
        policy_version=policy_version,
        decided_at=decided_at,
    )


@dataclass(frozen=True)
class _Judgement:
    """What the evidence says before any limit is applied, with the sentences that say it."""

    kind: DecisionKind
    score: int | None
    grade: Grade | None
    subscores: SubScores
    evidence_limit: Decimal | None
    explanation: list[str]


def _judge(inputs: AssessmentInputs, policy: CreditScoringPolicy, today: date) -> _Judgement:
    """Score the evidence and pick the decision: the grade's, or a more severe one a rule forces."""
    report, behaviour, outlook = inputs.report, inputs.behaviour, inputs.outlook
    report_score, report_reason = _report_score(report, today, policy, inputs.provider_error)
    behaviour_score = _behaviour_score(behaviour, policy)
    outlook_score = _outlook_score(outlook)
    subscores = SubScores(report=report_score, behaviour=behaviour_score, outlook=outlook_score)
    explanation = [
        report_reason,
        _behaviour_reason(behaviour, behaviour_score),
        _outlook_reason(outlook, outlook_score),
    ]

    # Without a usable report nothing is scored or approved: finance decides.
    if report is None or report_score is None:
        return _Judgement(DecisionKind.REFER, None, None, subscores, None, explanation)
    if inputs.provider_error is not None:
        explanation.append(
            f"the credit report provider reported an error ({inputs.provider_error}); the"
            " report above is recent enough and is used"
        )

    score = _combined_score(subscores, policy)
    grade = policy.grade_bands.grade_of(score)
    kinds = [policy.decision_by_grade[grade]]
    explanation.append(_score_reason(subscores, score, grade, policy))
    explanation.append(f"the policy's decision for grade {grade}: {DECISION_WORDS[kinds[0]]}")
    for flag in report.risk_flags:
        flag_kind = policy.risk_flag_decision.get(flag.strip().lower())
        if flag_kind is None:
            explanation.append(
                f"report from {report.provider} flags {flag}, which the policy has no rule for:"
                " noted, not scored"
            )
        else:
            kinds.append(flag_kind)
            explanation.append(
                f"report from {report.provider} flags {flag}: {DECISION_WORDS[flag_kind]}"
            )
    kind = max(kinds, key=DECISION_SEVERITY.index)

    evidence_limit, limit_problem = _evidence_limit(report, grade, behaviour.currency, policy)
    if kind in APPROVALS and evidence_limit is None:
        kind = DecisionKind.REFER
        explanation.append(f"{limit_problem}: refer to finance")
    return _Judgement(kind, score, grade, subscores, evidence_limit, explanation)


def _headline(judgement: _Judgement, terms: int | None) -> str:
    headline = f"decision: {DECISION_WORDS[judgement.kind]}"
    if terms is not None:
        headline += f" of {terms} days"
    if judgement.grade is not None:
        headline += f" (grade {judgement.grade}, score {judgement.score})"
    return headline


def _report_score(
    report: CreditReport | None,
    today: date,
    policy: CreditScoringPolicy,
    provider_error: str | None,
) -> tuple[int | None, str]:
    """The report's sub-score, or None with the reason it cannot be used."""
    if report is None:
        if provider_error is not None:
            return None, (
                f"no credit report: the provider is unavailable ({provider_error}); an outage"
                " never approves credit by default"
            )
        return None, "no credit report on the buyer: credit needs an assessment first"

    described = f"report from {report.provider} dated {report.report_date.isoformat()}"
    if report_is_stale(report, today, policy):
        age = (today - report.report_date).days
        refresh = f" (refreshing it failed: {provider_error})" if provider_error else ""
        return None, (
            f"{described} is {age} days old, over the policy's {policy.max_report_age_days}-day"
            f" maximum: it must be refreshed before credit is decided{refresh}"
        )

    grade_score = (
        policy.report_grade_scores.get(report.grade.strip().upper()) if report.grade else None
    )
    if report.score is not None:
        score = report.score
        details = f"grade {report.grade}, score {score}" if report.grade else f"score {score}"
    elif grade_score is not None:
        score = grade_score
        details = f"grade {report.grade} (no score; the policy counts the grade as {score})"
    else:
        return None, (
            f"{described} gives neither a score nor a grade the policy can read"
            f" (grade {report.grade!r})"
        )

    if report.recommended_limit is not None and report.currency is not None:
        details += f", recommended limit {_money(report.recommended_limit, report.currency)}"
    return score, f"{described}: {details}: report score {score}"


def _behaviour_score(behaviour: PaymentBehaviour, policy: CreditScoringPolicy) -> int | None:
    """The mean of the parts there is evidence for, or None without any history.

    Punctuality is the on-time rate; average lateness and worst lateness (the worst settled or
    the oldest still open) each fall linearly from 100 at 0 days to 0 at the policy's floor.
    """
    parts: list[Decimal] = []
    if behaviour.on_time_rate is not None:
        parts.append(behaviour.on_time_rate * 100)
        parts.append(_lateness_part(behaviour.average_days_late, policy))
    worst = max(behaviour.worst_days_late, behaviour.oldest_overdue_days)
    if behaviour.has_history or behaviour.open_overdue_invoices:
        parts.append(_lateness_part(Decimal(worst), policy))
    if not parts:
        return None
    return _whole(sum(parts, Decimal(0)) / len(parts))


def _lateness_part(days: Decimal, policy: CreditScoringPolicy) -> Decimal:
    return max(Decimal(0), 100 * (1 - days / policy.lateness_floor_days))


def _outlook_score(outlook: Outlook) -> int:
    # 1 (lowest risk) scores 100, 5 (highest) scores 0, in even steps.
    return (5 - outlook.rating) * 25


def _combined_score(subscores: SubScores, policy: CreditScoringPolicy) -> int:
    """The weighted sum; without payment history the other two weights are scaled up to 1."""
    assert subscores.report is not None
    weights = policy.weights
    total = weights.report * subscores.report + weights.outlook * subscores.outlook
    weight = weights.report + weights.outlook
    if subscores.behaviour is not None:
        total += weights.behaviour * subscores.behaviour
        weight += weights.behaviour
    return _whole(total / weight)


def _score_reason(
    subscores: SubScores, score: int, grade: Grade, policy: CreditScoringPolicy
) -> str:
    weights = policy.weights
    terms = [f"report {subscores.report} x {weights.report}"]
    if subscores.behaviour is not None:
        terms.append(f"behaviour {subscores.behaviour} x {weights.behaviour}")
    terms.append(f"outlook {subscores.outlook} x {weights.outlook}")
    text = f"score {score} of 100 = {' + '.join(terms)}"
    if subscores.behaviour is None:
        text += ", scaled to the report and outlook weights without payment history"
    floor = policy.grade_bands.floor_of(grade)
    band = f"from {floor}" if grade is not Grade.E else f"below {policy.grade_bands.d}"
    return f"{text}: grade {grade} ({band})"


def _evidence_limit(
    report: CreditReport, grade: Grade, currency: str, policy: CreditScoringPolicy
) -> tuple[Decimal | None, str]:
    """min(recommended limit x the grade's fraction, the policy maximum), or why there is none."""
    described = f"report from {report.provider}"
    if report.recommended_limit is None or report.currency is None:
        return None, f"{described} recommends no limit, so none can be set from it"
    if report.currency != currency:
        # NOTE: limits are kept in one currency; a recommendation in another is not converted.
        return None, (
            f"{described} recommends a limit in {report.currency} and the invoice is in"
            f" {currency}: limits are not converted"
        )
    granted = report.recommended_limit * policy.limit_by_grade[grade]
    return _floor_money(min(granted, policy.max_limit), currency), ""


def _evidence_limit_reason(
    report: CreditReport,
    grade: Grade,
    evidence_limit: Decimal,
    currency: str,
    policy: CreditScoringPolicy,
) -> str:
    assert report.recommended_limit is not None
    fraction = policy.limit_by_grade[grade]
    text = (
        f"limit {_money(evidence_limit, currency)}: {_percent(fraction)} of the recommended"
        f" {_money(report.recommended_limit, currency)} for grade {grade}"
    )
    if report.recommended_limit * fraction > policy.max_limit:
        text += f", capped at the policy maximum of {_money(policy.max_limit, currency)}"
    return text


def _referral_limit_reason(current_limit: Decimal | None, currency: str) -> str:
    if current_limit is None:
        return "no credit is granted until finance decides"
    return f"the limit stays at {_money(current_limit, currency)} until finance decides"


def _behaviour_reason(behaviour: PaymentBehaviour, score: int | None) -> str:
    window = f"in the last {behaviour.window_days} days"
    if behaviour.has_history:
        text = (
            f"paid {behaviour.invoices_on_time} of {behaviour.invoices_settled} invoices on time"
            f" {window}; worst {behaviour.worst_days_late} days late,"
            f" {behaviour.average_days_late} days late on average"
        )
    else:
        text = f"no invoice settled {window}"
    if behaviour.open_overdue_invoices:
        text += (
            f"; {_count(behaviour.open_overdue_invoices, 'open invoice')} past due, the oldest by"
            f" {behaviour.oldest_overdue_days} days,"
            f" {_money(behaviour.open_overdue_amount, behaviour.currency)} of them in"
            f" {behaviour.currency}"
        )
    if score is None:
        return f"{text}: payment behaviour not scored"
    return f"{text}: behaviour score {score}"


def _outlook_reason(outlook: Outlook, score: int) -> str:
    industry = outlook.industry_code or "unknown industry"
    country = outlook.country or "an unknown country"
    if outlook.matched_row is None:
        return (
            f"no outlook rating for {industry} in {country} in the {outlook.source}: counted as"
            f" neutral, {outlook.rating} of 5: outlook score {score}"
        )
    label = f"{outlook.note} ({industry})" if outlook.note else f"industry {industry}"
    return (
        f"{label} in {country}: outlook {outlook.rating} of 5 ({RISK_WORDS[outlook.rating]}),"
        f" row {outlook.matched_row} of the {outlook.source}: outlook score {score}"
    )


# The limit review.


def review_limit(
    customer_id: str,
    current_limit: Decimal,
    assessment: CreditDecision,
    previous_grade: Grade | None,
    policy: CreditScoringPolicy,
    review_after_days: int,
    now: datetime,
) -> LimitReview:
    """Raise, keep or lower a limit on a fresh assessment of the buyer, and record why.

    `assessment` is `assess` run today, under the same policy, on fresh evidence with the current
    limit and exposure; `previous_grade` is the grade of the assessment before.

    Lowering comes first: a decline lowers to 0; an open invoice `overdue_days_for_concern` or
    more past due, or a worse grade than before, lowers by one step; evidence below the current
    limit lowers to the evidence; the lowest of these stands. Otherwise a referral keeps the
    limit. A raise needs all of: a non-zero limit, `review_after_days` of history, the policy's
    on-time rate, no invoice settled `overdue_days_for_concern` or more late in the window, an
    approval with the standard terms, a report scoring at least grade B's floor, and evidence
    above the current limit. It is one step at most and never above the evidence, which the
    policy maximum already caps.
    """
    today = _utc(now).date()
    currency = assessment.currency
    behaviour = assessment.inputs.behaviour
    step = policy.review_step_percent / 100
    evidence_limit = assessment.evidence_limit
    current = f"the current limit of {_money(current_limit, currency)}"
    # The review repeats the assessment's evidence, not its limit sentences: those were written
    # for an invoice, this is about the limit itself.
    evidence = [
        f"assessed on {assessment.decided_at.date().isoformat()}:"
        f" {DECISION_WORDS[assessment.kind]}",
        *_judge(assessment.inputs, policy, assessment.decided_at.date()).explanation,
    ]

    def review(new_limit: Decimal, reasons: list[str]) -> LimitReview:
        if new_limit != current_limit:
            new_limit = _floor_money(new_limit, currency)
        direction: Literal["raised", "kept", "lowered"] = (
            "raised"
            if new_limit > current_limit
            else "lowered"
            if new_limit < current_limit
            else "kept"
        )
        headline = (
            f"limit {direction} from {_money(current_limit, currency)}"
            f" to {_money(new_limit, currency)}"
            if direction != "kept"
            else f"limit kept at {_money(current_limit, currency)}"
        )
        return LimitReview(
            customer_id=customer_id,
            old_limit=current_limit,
            new_limit=new_limit,
            currency=currency,
            direction=direction,
            reasons=[headline, *reasons],
            reviewed_at=_utc(now),
            next_review_on=today + timedelta(days=review_after_days),
        )

    if assessment.kind is DecisionKind.DECLINE:
        return review(Decimal(0), ["a fresh assessment declines credit", *evidence])

    # Lowering: each concern proposes a new limit and the lowest stands.
    concerns: list[str] = []
    proposals: list[Decimal] = []
    concern_days = policy.overdue_days_for_concern
    if behaviour.oldest_overdue_days >= concern_days:
        concerns.append(
            f"an open invoice is {behaviour.oldest_overdue_days} days past due"
            f" ({concern_days} or more is a concern)"
        )
    if (
        previous_grade is not None
        and assessment.grade is not None
        and GRADE_ORDER.index(assessment.grade) > GRADE_ORDER.index(previous_grade)
    ):
        concerns.append(f"the grade fell from {previous_grade} to {assessment.grade}")
    if concerns:
        proposals.append(current_limit * (1 - step))
        concerns.append(f"lowered by one step of {_percent(step)}")
    if evidence_limit is not None and evidence_limit < current_limit:
        proposals.append(evidence_limit)
        concerns.append(
            f"the evidence supports at most {_money(evidence_limit, currency)}, below {current}"
        )
    if proposals:
        return review(min(proposals), [*concerns, *evidence])

    if assessment.kind is DecisionKind.REFER:
        return review(
            current_limit,
            ["no raise without an assessment that approves", *evidence],
        )

    # Raising: every condition must hold; the reasons list each one that does not.
    missing: list[str] = []
    report_score = assessment.subscores.report
    history_days = (today - behaviour.first_invoice_on).days if behaviour.first_invoice_on else 0
    if current_limit == 0:
        missing.append("a zero limit is not raised by a review: finance sets a new one")
    if history_days < review_after_days:
        missing.append(
            f"{history_days} days of payment history, fewer than the {review_after_days} a"
            " raise needs"
        )
    if behaviour.on_time_rate is None or behaviour.on_time_rate < policy.good_on_time_rate:
        missing.append(
            f"paid {behaviour.invoices_on_time} of {behaviour.invoices_settled} invoices on time"
            f" in the last {behaviour.window_days} days; a raise needs"
            f" {_percent(policy.good_on_time_rate)}"
        )
    # A late payment already settled stops raises for the window rather than lowering the limit
    # at every review in it; the score, and so the grade, carries it too.
    if behaviour.worst_days_late >= concern_days:
        missing.append(
            f"an invoice was paid {behaviour.worst_days_late} days late in the last"
            f" {behaviour.window_days} days ({concern_days} or more is a concern)"
        )
    if assessment.kind is not DecisionKind.APPROVE:
        missing.append(
            f"the assessment is to {DECISION_WORDS[assessment.kind]}; a raise needs an approval"
            " with the standard terms"
        )
    if report_score is None or report_score < policy.grade_bands.b:
        missing.append(
            f"the report scores {report_score}; a raise needs at least {policy.grade_bands.b}"
        )
    if evidence_limit is None or evidence_limit <= current_limit:
        missing.append(f"the evidence supports no more than {current}")
    if missing or evidence_limit is None:
        return review(current_limit, [*missing, *evidence])

    stepped = current_limit * (1 + step)
    raised = min(stepped, evidence_limit)
    bound = (
        f"one step of {_percent(step)}"
        if stepped <= evidence_limit
        else f"up to what the evidence supports, {_money(evidence_limit, currency)}"
    )
    return review(
        raised,
        [
            f"good behaviour and a good, recent report: raised by {bound}",
            *evidence,
        ],
    )


# Small helpers.


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no place in an assessment: give it a timezone")
    return moment.astimezone(UTC)


def _whole(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _floor_money(amount: Decimal, currency: str) -> Decimal:
    # Limits round down to the minor unit so that no rounding grants more than the rule.
    exponent = Decimal(1).scaleb(-minor_unit(currency))
    return amount.quantize(exponent, rounding=ROUND_DOWN)


def _money(amount: Decimal, currency: str) -> str:
    exponent = Decimal(1).scaleb(-minor_unit(currency))
    return f"{currency} {amount.quantize(exponent, rounding=ROUND_HALF_UP):,}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _percent(fraction: Decimal) -> str:
    text = f"{fraction * 100:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"
