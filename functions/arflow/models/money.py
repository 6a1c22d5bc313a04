"""Money: amounts are Decimal, rounded to the minor unit of their ISO 4217 currency."""

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel.numbers import get_currency_precision, list_currencies


@lru_cache(maxsize=1)
def known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def is_known_currency(code: str) -> bool:
    return code in known_currencies()


def minor_unit(currency: str) -> int:
    """Digits after the decimal point for the currency (EUR 2, JPY 0, BHD 3)."""
    return int(get_currency_precision(currency))


def quantize(amount: Decimal, currency: str) -> Decimal:
    exponent = Decimal(1).scaleb(-minor_unit(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


def from_minor_units(amount: int, currency: str) -> Decimal:
    """Stripe and others send integers in the currency's minor unit."""
    return quantize(Decimal(amount).scaleb(-minor_unit(currency)), currency)
