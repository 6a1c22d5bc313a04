"""The dunning and credit policy: one validated configuration, data rather than code.

The state machine never holds a day count: the lifecycle logic computes each invoice's milestones
from this policy and the state machine waits for the times it is given.
"""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from arflow.models.credit import CreditScoringPolicy


class Stage(StrEnum):
    """The dunning ladder, in order."""

    REMINDER = "reminder"
    OVERDUE_NOTICE = "overdue_notice"
    FORMAL_NOTICE = "formal_notice"
    ESCALATION = "escalation"
    CLAIM = "claim"


STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)


class Milestones(BaseModel):
    """Days relative to the due date on which each stage is due (negative: before it)."""

    model_config = ConfigDict(extra="forbid")

    reminder: int = -5
    overdue_notice: int = 3
    formal_notice: int = 15
    escalation: int = 30
    claim: int = 60

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        offsets = [getattr(self, stage.value) for stage in STAGE_ORDER]
        if offsets != sorted(offsets) or len(set(offsets)) != len(offsets):
            raise ValueError("milestones must be strictly increasing in ladder order")
        if self.overdue_notice <= 0:
            raise ValueError("overdue_notice must fall after the due date")
        return self

    def offset(self, stage: Stage) -> int:
        return int(getattr(self, stage.value))


class LateFeeTerms(BaseModel):
    """The late-payment clause quoted in the formal letter."""

    model_config = ConfigDict(extra="forbid")

    annual_interest_percent: Decimal = Field(default=Decimal("10.15"), ge=0, le=100)
    fixed_compensation: Decimal = Field(default=Decimal("40"), ge=0)
    fixed_compensation_currency: str = "EUR"


class InsurancePolicy(BaseModel):
    """Trade-credit insurance: who is covered, when the insurer must hear, what it pays."""

    model_config = ConfigDict(extra="forbid")

    insurer: str = "Local credit insurer"
    policy_number: str = "LOCAL-0001"
    covers_all_buyers: bool = True
    discretionary_limit: Decimal = Field(
        default=Decimal("25000"),
        ge=0,
        description="Per-buyer cover without a named limit, in the invoice's currency",
    )
    indemnity_percent: Decimal = Field(default=Decimal("90"), gt=0, le=100)
    overdue_notification_deadline_days: int = Field(
        default=45, ge=1, description="Days after the due date by which an overdue must be notified"
    )


class CreditPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new_customer_limit: Decimal = Field(default=Decimal("20000"), ge=0)
    review_after_days: int = Field(default=90, ge=1)
    unrated_buyer_limit: Decimal | None = Field(
        default=None,
        ge=0,
        description=(
            "A limit the supplier may grant on its own judgement to a buyer the credit provider "
            "has no report on (like an insurer's discretionary limit); None refers such buyers"
        ),
    )


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scoring: CreditScoringPolicy = Field(default_factory=CreditScoringPolicy)
    outlook_csv: str | None = Field(
        default=None,
        description="An industry and country outlook table (CSV) replacing the shipped one",
    )
    version: str = "default-1"
    timezone: str = Field(default="UTC", description="Where notices are sent from (IANA name)")
    send_hour: int = Field(default=9, ge=0, le=23, description="Local hour notices go out")
    default_payment_terms_days: int = Field(default=30, ge=0, le=3650)
    customer_payment_terms_days: dict[str, int] = Field(
        default_factory=dict, description="Agreed terms by customer id, for invoices that give none"
    )
    milestones: Milestones = Field(default_factory=Milestones)
    late_fee: LateFeeTerms = Field(default_factory=LateFeeTerms)
    insurance: InsurancePolicy | None = Field(default_factory=InsurancePolicy)
    credit: CreditPolicy = Field(default_factory=CreditPolicy)

    @field_validator("timezone")
    @classmethod
    def _real_timezone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @model_validator(mode="after")
    def _insurer_hears_in_time(self) -> Self:
        if self.insurance is not None:
            deadline = self.insurance.overdue_notification_deadline_days
            if self.milestones.escalation > deadline:
                raise ValueError(
                    f"milestones.escalation (due+{self.milestones.escalation}) notifies the "
                    "insurer "
                    f"after the policy's deadline of due+{deadline} days"
                )
        return self

    def stage_at(self, stage: Stage, due_date: date) -> datetime:
        """The UTC instant a stage falls due: its day at the policy's local send hour."""
        day = due_date + timedelta(days=self.milestones.offset(stage))
        local = datetime.combine(day, time(self.send_hour), tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(ZoneInfo("UTC"))

    @classmethod
    def from_text(cls, text: str) -> "Policy":
        """A policy document, YAML or JSON; what it leaves out takes the defaults."""
        return cls.model_validate(yaml.safe_load(text) or {})

    @classmethod
    def from_file(cls, path: Path) -> "Policy":
        return cls.from_text(path.read_text(encoding="utf-8"))
