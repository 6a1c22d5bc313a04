"""Domain errors, and the one place each is mapped to an HTTP status and to an ASL error name.

A Lambda error reaches Step Functions under the exception's class name, so the ASL's ErrorEquals
names are these class names (tests check that every name the ASL uses exists).
"""


class ArflowError(Exception):
    """Base of the product's own errors."""

    http_status = 500


class TransientServiceError(ArflowError):
    """An AWS or outside service failed in a way a retry can fix; the state machine retries it."""

    http_status = 503


class WebhookAuthError(ArflowError):
    """A webhook request is unauthenticated, stale or tampered with."""

    http_status = 401


class InvoiceConflictError(ArflowError):
    """The same supplier and invoice number arrived again with different content."""

    http_status = 409


class UnknownInvoiceError(ArflowError):
    """A payment or step names an invoice the product does not have."""

    http_status = 404


class UnknownCustomerError(ArflowError):
    http_status = 404


class InvalidRequestError(ArflowError):
    """A request that is well-formed but asks for something that cannot be (a pause in the past)."""

    http_status = 422


class PaymentRejectedError(ArflowError):
    """A payment that cannot be applied as sent (for example, another currency)."""

    http_status = 422


# ASL error names that are not Python classes of this product, and where they come from.
STATES_ERRORS = frozenset({"States.ALL", "States.Timeout", "States.TaskFailed"})
LAMBDA_SERVICE_ERRORS = frozenset(
    {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    }
)
