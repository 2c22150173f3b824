"""Field types that HTTP bodies of several services share: amounts as decimal strings,
ISO 4217 currencies, IBANs. (Text PostgreSQL cannot store is refused for every field by
``relance.common.textguard``.) Each refuses bad input with a
message a client can act on (pydantic turns it into a 422)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from relance.common.money import is_currency

_AMOUNT = re.compile(r"^\d{1,13}(\.\d{1,6})?$")
_SIGNED_AMOUNT = re.compile(r"^-?\d{1,13}(\.\d{1,6})?$")


def _amount_text(value: Any, example: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"send amounts as decimal strings, e.g. {example}")
    return str(value).strip()


def parse_amount(value: Any) -> Decimal:
    text = _amount_text(value, '"1250.00"')
    if not _AMOUNT.match(text):
        raise ValueError('must be a positive decimal such as "1250.00"')
    return Decimal(text)


def parse_signed_amount(value: Any) -> Decimal:
    text = _amount_text(value, '"1250.00" or "-42.10"')
    if not _SIGNED_AMOUNT.match(text) or Decimal(text) == 0:
        raise ValueError('must be a non-zero decimal such as "1250.00" (credit) or "-42.10"')
    return Decimal(text)


def check_currency(code: str) -> str:
    if not is_currency(code):
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


def check_iban(value: str) -> str:
    """The IBAN in its compact form (no spaces, upper case), if its checksum holds."""
    try:
        return str(IBAN(value).compact)
    except SchwiftyException as exc:
        raise ValueError(f"invalid IBAN: {exc}") from exc


Amount = Annotated[Decimal, BeforeValidator(parse_amount)]
SignedAmount = Annotated[Decimal, BeforeValidator(parse_signed_amount)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$"), AfterValidator(check_currency)]
Iban = Annotated[str, Field(min_length=15, max_length=42), AfterValidator(check_iban)]
