"""Why a document was refused, field by field: the body of the 4xx answer to the sender."""

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

# One class for an unauthenticated webhook, whichever scheme: it is mapped to 401 in arflow.errors.
from arflow.errors import WebhookAuthError

__all__ = [
    "DocumentError",
    "FieldProblem",
    "InvalidDocumentError",
    "MalformedDocumentError",
    "UnsupportedDocumentError",
    "WebhookAuthError",
]


class FieldProblem(BaseModel):
    """One thing wrong with one field. `field` is a dotted path, or an element path in XML."""

    field: str
    message: str


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class DocumentError(Exception):
    """A document the product will not take; says why, with the fields at fault."""

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    @property
    def kind(self) -> str:
        """`malformed_document`, `unsupported_document`, `invalid_document`."""
        return _snake_case(type(self).__name__.removesuffix("Error"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.kind,
            "message": self.message,
            "problems": [problem.model_dump() for problem in self.problems],
        }


class MalformedDocumentError(DocumentError):
    """Not parseable as JSON or XML, or XML the product refuses to expand (DTDs, entities)."""


class UnsupportedDocumentError(DocumentError):
    """Parseable, but not an invoice or credit note: an order, a customer, another event."""


class InvalidDocumentError(DocumentError):
    """An invoice or credit note with fields missing or wrong."""

    @classmethod
    def from_validation(
        cls, error: ValidationError, sender_path: Callable[[str], str] | None = None
    ) -> "InvalidDocumentError":
        """Field problems from pydantic's errors, with paths in the sender's own terms.

        `sender_path` turns a model path (`customer.email`, `lines.0.amount`) into what the
        sender calls the field: an XML element path, a Stripe attribute.
        """
        problems = []
        for detail in error.errors():
            path, message = _path_and_message(detail)
            field = sender_path(path) if sender_path and path else path
            problems.append(FieldProblem(field=field or "document", message=message))
        return cls.of(problems)

    @classmethod
    def of(cls, problems: list[FieldProblem]) -> "InvalidDocumentError":
        fields = ", ".join(dict.fromkeys(problem.field for problem in problems))
        return cls(f"the document is not valid: {fields}", problems)


# A model validator that checks several fields at once names the field it blames as a prefix.
_BLAMED_FIELD = re.compile(r"^(?P<field>[a-z_][a-z0-9_.]*): (?P<message>.+)$", re.DOTALL)

_PATTERN_MESSAGES = {
    "email": "is not a valid e-mail address",
    "country": "must be an ISO 3166-1 alpha-2 country code in capitals, e.g. SE",
    "currency": "must be an ISO 4217 currency code in capitals, e.g. EUR",
    "locale": "must be a language tag such as en or zh-CN",
}

_TYPE_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "decimal_parsing": "is not a number",
    "decimal_type": "is not a number",
    "finite_number": "must be a finite number",
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "bool_parsing": "must be true or false",
    "date_parsing": "is not a date (expected YYYY-MM-DD)",
    "date_from_datetime_parsing": "is not a date (expected YYYY-MM-DD)",
    "date_from_datetime_inexact": "is not a date (expected YYYY-MM-DD)",
    "date_type": "is not a date (expected YYYY-MM-DD)",
    "string_type": "must be text",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be a list",
}


def _path_and_message(detail: ErrorDetails) -> tuple[str, str]:
    path = ".".join(str(part) for part in detail["loc"])
    kind = detail["type"]
    ctx = detail.get("ctx") or {}

    if kind == "value_error":
        message = str(ctx.get("error", detail["msg"]))
        blamed = _BLAMED_FIELD.match(message)
        if not path and blamed:
            return blamed["field"], blamed["message"]
        return path, message
    if kind == "string_pattern_mismatch":
        leaf = path.rsplit(".", 1)[-1]
        return path, _PATTERN_MESSAGES.get(leaf, f"does not match {ctx.get('pattern')}")
    if kind == "string_too_short":
        return path, "must not be empty"
    if kind == "string_too_long":
        return path, f"is longer than {ctx.get('max_length')} characters"
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        return path, detail["msg"].replace("Input should be", "must be")
    if kind == "enum":
        return path, f"must be one of {ctx.get('expected')}"
    return path, _TYPE_MESSAGES.get(kind, detail["msg"])
