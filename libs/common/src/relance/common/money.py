"""Amounts and currencies: ISO 4217 codes, and no more decimals than the currency has."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from babel.numbers import get_currency_precision, list_currencies

MAX_AMOUNT = Decimal("1000000000000")  # one trillion: beyond any small business's invoice


@lru_cache(maxsize=1)
def known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def is_currency(code: str) -> bool:
    return code in known_currencies()


@lru_cache(maxsize=512)
def minor_units(currency: str) -> int:
    """Decimal places of the currency: 2 for EUR, 0 for JPY, 3 for TND."""
    return int(get_currency_precision(currency))


@lru_cache(maxsize=512)
def _smallest_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def amount_problem(amount: Decimal, currency: str, *, allow_zero: bool = False) -> str | None:
    """Why ``amount`` is not a valid amount in ``currency``, or None."""
    if not amount.is_finite():
        return "must be a number"
    if amount < 0 or (amount == 0 and not allow_zero):
        return "must be greater than zero"
    if amount >= MAX_AMOUNT:
        return f"must be less than {MAX_AMOUNT}"
    exponent = amount.normalize().as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if decimals > minor_units(currency):
        return f"has {decimals} decimals; {currency} has {minor_units(currency)}"
    return None


def quantize(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(_smallest_unit(currency))
