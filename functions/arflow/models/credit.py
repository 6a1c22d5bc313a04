"""The credit assessment: the evidence it weighs, the policy that scores it, what it decides.

Three kinds of evidence go in: an external credit report, the buyer's payment behaviour in arflow's
own history, and the outlook for its industry and country. The scoring policy turns them into a
score, a grade and a decision; the decision keeps the evidence it was made on, so it can be read
back and explained later.
"""

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from arflow.models.instants import UtcDatetime


class Grade(StrEnum):
    """The assessment's grade, A (strongest buyer) to E (weakest)."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"


GRADE_ORDER: tuple[Grade, ...] = tuple(Grade)


class DecisionKind(StrEnum):
    """What the credit check decides, from the most to the least credit granted."""

    APPROVE = "approve"
    APPROVE_SHORTER_TERMS = "approve_shorter_terms"
    APPROVE_WITH_COLLATERAL = "approve_with_collateral"
    REFER = "refer"
    DECLINE = "decline"


# When several rules apply the most severe one decides: a referral outranks any approval, and
# a decline outranks a referral because no one needs to be asked to refuse credit.
DECISION_SEVERITY: tuple[DecisionKind, ...] = tuple(DecisionKind)

APPROVALS = frozenset(
    {
        DecisionKind.APPROVE,
        DecisionKind.APPROVE_SHORTER_TERMS,
        DecisionKind.APPROVE_WITH_COLLATERAL,
    }
)


class CreditReport(BaseModel):
    """A credit agency's report on the buyer, as the report adapter hands it over."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str
    provider: str
    reference: str
    grade: str | None = None
    score: int | None = Field(default=None, ge=0, le=100, description="Higher is better")
    recommended_limit: Decimal | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    report_date: date
    risk_flags: list[str] = Field(
        default_factory=list, description="e.g. insolvency_proceedings, payment_defaults"
    )

    @model_validator(mode="after")
    def _limit_has_a_currency(self) -> Self:
        if self.recommended_limit is not None and self.currency is None:
            raise ValueError("a recommended_limit needs its currency")
        return self


class PaymentBehaviour(BaseModel):
    """How the buyer has paid arflow's invoices over a rolling window ending today."""

    model_config = ConfigDict(extra="forbid")

    window_days: int = Field(ge=1)
    invoices_settled: int = Field(ge=0, description="Invoices settled within the window")
    invoices_on_time: int = Field(ge=0, description="Of those, settled on or before the due date")
    on_time_rate: Decimal | None = Field(
        default=None, ge=0, le=1, description="A fraction, 0 to 1; None without any history"
    )
    average_days_late: Decimal = Field(
        default=Decimal(0), ge=0, description="Over every settled invoice, on-time ones count 0"
    )
    worst_days_late: int = Field(default=0, ge=0, description="Of the settled invoices")
    open_overdue_amount: Decimal = Field(default=Decimal(0), ge=0)
    open_overdue_invoices: int = Field(default=0, ge=0)
    oldest_overdue_days: int = Field(
        default=0, ge=0, description="Days past due of the oldest open overdue invoice"
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    first_invoice_on: date | None = Field(
        default=None, description="Issue date of the buyer's first invoice, at any time"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.invoices_on_time > self.invoices_settled:
            raise ValueError("invoices_on_time cannot exceed invoices_settled")
        if (self.on_time_rate is None) != (self.invoices_settled == 0):
            raise ValueError("on_time_rate is None exactly when no invoice was settled")
        return self

    @property
    def has_history(self) -> bool:
        return self.invoices_settled > 0


class Outlook(BaseModel):
    """The risk outlook for an industry in a country, from a rating table the user can replace."""

    model_config = ConfigDict(extra="forbid")

    industry_code: str | None = Field(description="NACE or ISIC code, as asked for")
    country: str | None = Field(description="ISO 3166 alpha-2, as asked for")
    rating: int = Field(ge=1, le=5, description="1 is the lowest risk, 5 the highest")
    source: str = Field(description="The table the rating comes from")
    note: str = ""
    matched_row: str | None = Field(
        default=None, description="The table row used, e.g. 'F/*'; None for the neutral default"
    )


class SubScores(BaseModel):
    """Each dimension's score, 0 to 100, higher is better; None where there was no evidence."""

    model_config = ConfigDict(extra="forbid")

    report: int | None = Field(ge=0, le=100)
    behaviour: int | None = Field(ge=0, le=100)
    outlook: int = Field(ge=0, le=100)


class AssessmentInputs(BaseModel):
    """Everything an assessment was made on, stored with its decision."""

    model_config = ConfigDict(extra="forbid")

    report: CreditReport | None
    behaviour: PaymentBehaviour
    outlook: Outlook
    exposure_after_invoice: Decimal
    current_limit: Decimal | None
    is_new_customer: bool
    new_customer_limit: Decimal = Field(ge=0)
    provider_error: str | None = None


class CreditDecision(BaseModel):
    """The outcome of a credit assessment, with the reasons and the evidence behind it."""

    model_config = ConfigDict(extra="forbid")

    kind: DecisionKind
    score: int | None = Field(ge=0, le=100, description="None when there was no usable report")
    grade: Grade | None = Field(description="None when there was no usable report")
    subscores: SubScores
    credit_limit: Decimal = Field(ge=0)
    evidence_limit: Decimal | None = Field(
        ge=0,
        description="What the report and grade support before the current-limit and new-customer"
        " caps; None without a usable report",
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    payment_terms_days: int | None = Field(
        ge=0, description="None means the buyer's standard terms"
    )
    collateral_required: bool
    exposure_over_limit: bool
    reasons: list[str]
    inputs: AssessmentInputs
    policy_version: str
    decided_at: UtcDatetime


class LimitReview(BaseModel):
    """A periodic look at a buyer's limit: raised, kept or lowered, and why."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str
    old_limit: Decimal = Field(ge=0)
    new_limit: Decimal = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    direction: Literal["raised", "kept", "lowered"]
    reasons: list[str]
    reviewed_at: UtcDatetime
    next_review_on: date

    @model_validator(mode="after")
    def _direction_matches(self) -> Self:
        expected = (
            "raised"
            if self.new_limit > self.old_limit
            else "lowered"
            if self.new_limit < self.old_limit
            else "kept"
        )
        if self.direction != expected:
            raise ValueError(f"limit {self.old_limit} -> {self.new_limit} is {expected}")
        return self


class ScoreWeights(BaseModel):
    """How much each dimension counts in the score; the three sum to 1."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    report: Decimal = Field(default=Decimal("0.5"), ge=0, le=1)
    """Weight of the external credit report's score."""
    behaviour: Decimal = Field(default=Decimal("0.3"), ge=0, le=1)
    """Weight of the buyer's payment behaviour in arflow's own history."""
    outlook: Decimal = Field(default=Decimal("0.2"), ge=0, le=1)
    """Weight of the industry and country outlook."""

    @model_validator(mode="after")
    def _sum_to_one(self) -> Self:
        total = self.report + self.behaviour + self.outlook
        if total != 1:
            raise ValueError(f"weights must sum to 1, not {total}")
        # No buyer is assessed without a report, so the report always counts.
        if self.report == 0:
            raise ValueError("the report's weight must be above 0")
        return self


class GradeBands(BaseModel):
    """The lowest score of each grade; anything below grade D's floor is grade E."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    a: int = Field(default=80, ge=0, le=100)
    """Lowest score of grade A."""
    b: int = Field(default=65, ge=0, le=100)
    """Lowest score of grade B."""
    c: int = Field(default=50, ge=0, le=100)
    """Lowest score of grade C."""
    d: int = Field(default=35, ge=0, le=100)
    """Lowest score of grade D; lower scores are grade E."""

    @model_validator(mode="after")
    def _descending(self) -> Self:
        if not self.a > self.b > self.c > self.d:
            raise ValueError("grade bands must fall strictly from A to D")
        return self

    def grade_of(self, score: int) -> Grade:
        floors = ((Grade.A, self.a), (Grade.B, self.b), (Grade.C, self.c), (Grade.D, self.d))
        for grade, floor in floors:
            if score >= floor:
                return grade
        return Grade.E

    def floor_of(self, grade: Grade) -> int:
        floors = {Grade.A: self.a, Grade.B: self.b, Grade.C: self.c, Grade.D: self.d}
        return floors.get(grade, 0)


def _default_decisions() -> dict[Grade, DecisionKind]:
    return {
        Grade.A: DecisionKind.APPROVE,
        Grade.B: DecisionKind.APPROVE,
        Grade.C: DecisionKind.APPROVE_SHORTER_TERMS,
        Grade.D: DecisionKind.APPROVE_WITH_COLLATERAL,
        Grade.E: DecisionKind.DECLINE,
    }


def _default_limit_fractions() -> dict[Grade, Decimal]:
    return {
        Grade.A: Decimal("1"),
        Grade.B: Decimal("0.75"),
        Grade.C: Decimal("0.5"),
        Grade.D: Decimal("0.25"),
        Grade.E: Decimal("0"),
    }


def _default_risk_flags() -> dict[str, DecisionKind]:
    return {
        "insolvency_proceedings": DecisionKind.DECLINE,
        "liquidation": DecisionKind.DECLINE,
        "payment_defaults": DecisionKind.REFER,
    }


def _default_report_grades() -> dict[str, int]:
    # Letter grades land in the middle of the matching default band.
    return {"A": 90, "B": 72, "C": 57, "D": 42, "E": 20}


class CreditScoringPolicy(BaseModel):
    """How evidence becomes a score, a grade, a decision and a limit. Amounts are in the
    currency of the assessment (the invoice's)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    weights: ScoreWeights = Field(default_factory=ScoreWeights)
    """Weights of the report, behaviour and outlook scores; they sum to 1."""
    grade_bands: GradeBands = Field(default_factory=GradeBands)
    """The lowest score of each grade A to D."""
    decision_by_grade: dict[Grade, DecisionKind] = Field(default_factory=_default_decisions)
    """The decision for each grade; every grade A to E must be given."""
    shorter_terms_days: int = Field(default=14, ge=0, le=3650)
    """Payment terms, in days, of an approval with shorter terms."""
    max_report_age_days: int = Field(default=180, ge=1)
    """A credit report older than this must be refreshed before it can be used."""
    risk_flag_decision: dict[str, DecisionKind] = Field(default_factory=_default_risk_flags)
    """The decision a report's risk flag forces, whatever the score (the more severe wins)."""
    report_grade_scores: dict[str, int] = Field(default_factory=_default_report_grades)
    """The score a report's own grade counts for when the report gives no score."""
    review_step_percent: Decimal = Field(default=Decimal("25"), gt=0, le=100)
    """The most a limit review raises or lowers a limit by, in percent of the current limit."""
    max_limit: Decimal = Field(default=Decimal("100000"), ge=0)
    """No buyer's limit goes above this."""
    limit_by_grade: dict[Grade, Decimal] = Field(default_factory=_default_limit_fractions)
    """Fraction of the report's recommended limit granted for each grade, 0 to 1."""
    behaviour_window_days: int = Field(default=365, ge=1)
    """Days of history the payment behaviour is measured over."""
    overdue_days_for_concern: int = Field(default=30, ge=1)
    """At review, an open invoice this many days past due lowers the limit; an invoice settled
    this many days late within the window stops a raise."""
    lateness_floor_days: int = Field(default=60, ge=1)
    """Days late at which the lateness parts of the behaviour score reach 0."""
    good_on_time_rate: Decimal = Field(default=Decimal("0.9"), ge=0, le=1)
    """The on-time rate, 0 to 1, a buyer needs before a review raises its limit."""

    @field_validator("decision_by_grade", "limit_by_grade")
    @classmethod
    def _every_grade(cls, value: dict[Grade, object]) -> dict[Grade, object]:
        missing = [grade.value for grade in GRADE_ORDER if grade not in value]
        if missing:
            raise ValueError(f"grades {', '.join(missing)} are missing")
        return value

    @field_validator("limit_by_grade")
    @classmethod
    def _fractions(cls, value: dict[Grade, Decimal]) -> dict[Grade, Decimal]:
        fractions = [value[grade] for grade in GRADE_ORDER]
        if any(not 0 <= fraction <= 1 for fraction in fractions):
            raise ValueError("each fraction of the recommended limit is between 0 and 1")
        if fractions != sorted(fractions, reverse=True):
            raise ValueError("a worse grade cannot be granted a larger fraction")
        return value

    @field_validator("risk_flag_decision")
    @classmethod
    def _flag_names(cls, value: dict[str, DecisionKind]) -> dict[str, DecisionKind]:
        return {flag.strip().lower(): kind for flag, kind in value.items()}

    @field_validator("report_grade_scores")
    @classmethod
    def _report_grades(cls, value: dict[str, int]) -> dict[str, int]:
        if any(not 0 <= score <= 100 for score in value.values()):
            raise ValueError("a report grade counts for a score between 0 and 100")
        return {grade.strip().upper(): score for grade, score in value.items()}
