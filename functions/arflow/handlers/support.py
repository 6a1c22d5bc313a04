"""What every handler shares: the step input, and the one mapping of errors to HTTP answers."""

import base64
import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import BaseModel, ConfigDict, Field

from arflow.errors import ArflowError

_logger = Logger(service="arflow")


class StepInput(BaseModel):
    """The payload every state machine task sends."""

    model_config = ConfigDict(extra="allow")

    invoice_id: str = Field(min_length=1)
    execution: str | None = None


def json_response(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, default=str, ensure_ascii=False),
    )


def error_response(error: Exception) -> Response[str]:
    """Domain errors to their HTTP status; document errors carry their field problems."""
    from arflow.logic.documents.errors import DocumentError

    if isinstance(error, DocumentError):
        return json_response(error_status(error), error.to_dict())
    if isinstance(error, ArflowError):
        return json_response(
            error.http_status, {"error": type(error).__name__, "message": str(error)}
        )
    raise error


def error_status(error: Exception) -> int:
    from arflow.logic.documents.errors import MalformedDocumentError

    return 400 if isinstance(error, MalformedDocumentError) else 422


def raw_body(app: APIGatewayHttpResolver) -> bytes:
    """The body exactly as sent: signatures are over these bytes."""
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")


def answer_errors(app: APIGatewayHttpResolver) -> None:
    """Register the one mapping of domain and document errors to HTTP answers on a resolver."""
    from arflow.logic.documents.errors import DocumentError

    def refused(error: Exception) -> Response[str]:
        _logger.info("Request refused", error=type(error).__name__)
        return error_response(error)

    app.exception_handler(DocumentError)(refused)
    app.exception_handler(ArflowError)(refused)
