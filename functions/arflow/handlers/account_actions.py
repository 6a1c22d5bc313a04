"""AccountActionsFunction: a credit controller's actions on invoices and customers."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from arflow.handlers.support import answer_errors, json_response, raw_body
from arflow.logic import account, credit, webhook_auth
from arflow.logic.documents.canonical import load_json
from arflow.logic.documents.errors import InvalidDocumentError
from arflow.services import services
from arflow.timekeeping import utcnow

logger = Logger(service="arflow")
app = APIGatewayHttpResolver()


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    by: str | None = Field(default=None, max_length=200, description="Who asks, for the record")


class DisputeRequest(_Request):
    reason: str = Field(min_length=1, max_length=1000)


class ResolutionRequest(_Request):
    resolution: str = Field(min_length=1, max_length=1000)


class PromiseRequest(_Request):
    pay_by: date


class PauseRequest(_Request):
    reason: str = Field(min_length=1, max_length=1000)
    until: AwareDatetime


class WriteOffRequest(_Request):
    reason: str = Field(min_length=1, max_length=1000)


class OpenOrdersRequest(_Request):
    amount: Decimal = Field(ge=0, description="Orders accepted and not yet invoiced")


class CreditOverrideRequest(_Request):
    by: str = Field(min_length=1, max_length=200, description="Who decides: it is recorded")
    reason: str = Field(min_length=1, max_length=1000)
    credit_limit: Decimal | None = Field(default=None, ge=0)
    lift_holds: bool = Field(default=False, description="Lift declined/collateral/referred holds")


Model = TypeVar("Model", bound=BaseModel)


def authenticated(model: type[Model]) -> tuple[Model, datetime]:
    """The request's body as `model`, once its signature checks out."""
    raw = raw_body(app)
    deps = services()
    now = utcnow()
    webhook_auth.verify(
        raw,
        dict(app.current_event.headers),
        deps.secret(deps.settings.webhook_secret_arn),
        int(now.timestamp()),
    )
    try:
        return model.model_validate(load_json(raw or b"{}")), now
    except ValidationError as error:
        raise InvalidDocumentError.from_validation(error) from error


@app.post("/invoices/<invoice_id>/dispute")
def dispute(invoice_id: str) -> Response[str]:
    request, now = authenticated(DisputeRequest)
    return json_response(
        200, account.open_dispute(services(), invoice_id, request.reason, request.by, now)
    )


@app.post("/invoices/<invoice_id>/dispute/resolve")
def resolve(invoice_id: str) -> Response[str]:
    request, now = authenticated(ResolutionRequest)
    return json_response(
        200, account.resolve_dispute(services(), invoice_id, request.resolution, request.by, now)
    )


@app.post("/invoices/<invoice_id>/promise")
def promise(invoice_id: str) -> Response[str]:
    request, now = authenticated(PromiseRequest)
    return json_response(
        200, account.record_promise(services(), invoice_id, request.pay_by, request.by, now)
    )


@app.post("/invoices/<invoice_id>/write-off")
def write_off(invoice_id: str) -> Response[str]:
    request, now = authenticated(WriteOffRequest)
    return json_response(
        200, account.write_off(services(), invoice_id, request.reason, request.by, now)
    )


@app.post("/customers/<customer_id>/pause")
def pause(customer_id: str) -> Response[str]:
    request, now = authenticated(PauseRequest)
    result = account.pause_customer(
        services(), customer_id, request.reason, request.until, request.by, now
    )
    return json_response(200, result)


@app.delete("/customers/<customer_id>/pause")
def end_pause(customer_id: str) -> Response[str]:
    _, now = authenticated(_Request)
    return json_response(200, account.end_customer_pause(services(), customer_id, now))


@app.post("/customers/<customer_id>/credit")
def credit_override(customer_id: str) -> Response[str]:
    request, now = authenticated(CreditOverrideRequest)
    result = credit.override(
        services(),
        customer_id,
        request.credit_limit,
        request.lift_holds,
        request.reason,
        request.by,
        now,
    )
    return json_response(200, result)


@app.post("/customers/<customer_id>/open-orders")
def open_orders(customer_id: str) -> Response[str]:
    request, now = authenticated(OpenOrdersRequest)
    result = credit.report_open_orders(services(), customer_id, request.amount, request.by, now)
    return json_response(200, result)


answer_errors(app)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
