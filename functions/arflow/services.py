"""The adapters a handler works with, built once per function environment."""

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from arflow.config import Settings, settings
from arflow.dal.messaging import (
    DocumentStore,
    FinanceNotifier,
    HoldEvents,
    Mailer,
    load_policy,
    secret_value,
)
from arflow.dal.store import CreditDecisions, Customers, History, Invoices, Payments
from arflow.models.policy import Policy


@dataclass
class Services:
    settings: Settings
    invoices: Invoices = field(init=False)
    customers: Customers = field(init=False)
    history: History = field(init=False)
    payments: Payments = field(init=False)
    credit_decisions: CreditDecisions = field(init=False)

    def __post_init__(self) -> None:
        s, region = self.settings, self.settings.region
        self.invoices = Invoices(s.invoices_table, region, s.customers_table)
        self.customers = Customers(s.customers_table, region)
        self.history = History(s.events_table, region)
        self.payments = Payments(s.payments_table, region)
        self.credit_decisions = CreditDecisions(s.credit_decisions_table, region)

    def policy(self) -> Policy:
        return load_policy(self.settings.policy_parameter, self.settings.region)

    def secret(self, arn: str) -> str:
        return secret_value(arn, self.settings.region)

    @cached_property
    def mailer(self) -> Mailer:
        return Mailer(self.settings.region)

    @cached_property
    def finance(self) -> FinanceNotifier:
        return FinanceNotifier(self.settings.finance_topic_arn, self.settings.region)

    @cached_property
    def hold_events(self) -> HoldEvents:
        return HoldEvents(self.settings.order_hold_bus, self.settings.region)

    @cached_property
    def documents(self) -> DocumentStore:
        return DocumentStore(self.settings.documents_bucket, self.settings.region)

    @cached_property
    def templates_dir(self) -> Path:
        from arflow.logic.notices import templates_dir_from_env

        configured = self.settings.templates_dir
        return templates_dir_from_env({"TEMPLATES_DIR": configured} if configured else {})


_built: dict[Settings, Services] = {}


def services() -> Services:
    current = settings()
    found = _built.get(current)
    if found is None:
        found = _built.setdefault(current, Services(current))
    return found
