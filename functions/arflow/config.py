"""The functions' configuration, read from their environment and checked on entry."""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# The local stack runs every function in one process; each invocation sees its own function's
# environment through this overlay, as it would in its own Lambda sandbox.
_overlay: ContextVar[Mapping[str, str] | None] = ContextVar("arflow_environment", default=None)


class ConfigurationError(RuntimeError):
    """The function's environment is missing or malformed; nothing can run."""


def environment() -> Mapping[str, str]:
    overlay = _overlay.get()
    if overlay is None:
        return os.environ
    return {**os.environ, **overlay}


@contextmanager
def function_environment(variables: Mapping[str, str]) -> Iterator[None]:
    token = _overlay.set(dict(variables))
    try:
        yield
    finally:
        _overlay.reset(token)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    invoices_table: str = Field(alias="INVOICES_TABLE", min_length=1)
    customers_table: str = Field(alias="CUSTOMERS_TABLE", min_length=1)
    events_table: str = Field(alias="EVENTS_TABLE", min_length=1)
    payments_table: str = Field(alias="PAYMENTS_TABLE", min_length=1)
    claims_table: str = Field(alias="CLAIMS_TABLE", min_length=1)
    documents_bucket: str = Field(alias="DOCUMENTS_BUCKET", min_length=1)
    finance_topic_arn: str = Field(alias="FINANCE_TOPIC_ARN", min_length=1)
    order_hold_bus: str = Field(alias="ORDER_HOLD_BUS", min_length=1)
    policy_parameter: str = Field(alias="POLICY_PARAMETER", min_length=1)
    sender_email: str = Field(alias="SENDER_EMAIL", min_length=3)
    webhook_secret_arn: str = Field(alias="WEBHOOK_SECRET_ARN", min_length=1)
    stripe_secret_arn: str = Field(alias="STRIPE_SECRET_ARN", min_length=1)
    insurer_api_url: str = Field(default="", alias="INSURER_API_URL")
    insurer_secret_arn: str = Field(alias="INSURER_SECRET_ARN", min_length=1)
    templates_dir: str = Field(default="", alias="TEMPLATES_DIR")
    state_machine_arn: str = Field(default="", alias="STATE_MACHINE_ARN")
    credit_decisions_table: str = Field(alias="CREDIT_DECISIONS_TABLE", min_length=1)
    credit_reports_table: str = Field(alias="CREDIT_REPORTS_TABLE", min_length=1)
    region: str = Field(default="us-east-1", alias="AWS_REGION")


def settings() -> Settings:
    env = environment()
    return _settings_for(tuple(sorted((k, v) for k, v in env.items() if k.isupper())))


@lru_cache(maxsize=32)
def _settings_for(items: tuple[tuple[str, str], ...]) -> Settings:
    values = dict(items)
    values.setdefault("AWS_REGION", values.get("AWS_DEFAULT_REGION", "us-east-1"))
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        missing = ", ".join(str(e["loc"][0]) for e in error.errors())
        raise ConfigurationError(f"function environment is incomplete: {missing}") from error
