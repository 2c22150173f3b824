"""The matching rules: which open invoices of one organization a bank credit pays.

This package owns the decision, and only the decision: it is pure (no I/O, no clock, no
database). The service loads an organization's open invoices and known payers into an
:class:`OpenBook`, asks :meth:`OpenBook.match` about each credit of an import, records
what the answer says, and calls :meth:`OpenBook.settle` so that the next credit of the same
import sees the balances that are left.

For each credit, only invoices in the credit's currency, with a balance, and not rejected
by a person for this transaction (``excluded``) are considered. The rules, in order:

1. **reference**: a checksum-valid ISO 11649 reference (``RF…``) in the credit's creditor
   reference or in its remittance text, equal (no spaces, upper case) to an invoice's
   payment reference;
2. **number**: invoice numbers found as whole tokens of the remittance text. A number is
   compared by its groups of digits, without leading zeros and whatever separates them
   (``FA-2026-0012``, ``fa20260012`` and ``Fact. 2026/12`` all find ``FA-2026-0012``),
   and a group of digits is never a part of a longer one (``FA-2026-00123`` and
   ``120260012`` do not find it). Several numbers: one transfer paying several invoices;
3. **iban**: a counterparty IBAN known for exactly one customer, then that customer's only
   invoice with exactly the amount, or else its only combination of 2 to 5 invoices
   summing exactly to it (searched oldest first, with a bound on the work);
4. **name**: the counterparty name close (rapidfuzz) to one customer's name, by a margin
   over the next customer; then the amounts as in rule 3, but never matched automatically;
5. otherwise: unmatched.

An amount below the balances found is a partial payment, allocated oldest first; an amount
above them leaves an excess, kept as credit on the customer (:attr:`Match.excess`).

**Consistent amount.** With reference or number evidence, the credit is *matched* when its
amount is consistent with the invoices found:

- it equals their total (paid in full);
- it is below their total (a partial payment: bank fees deducted, or an instalment): the
  one combination of the found invoices that sums exactly to the amount is paid, or else
  they are paid oldest first, the last one partly (two combinations that fit equally are
  ambiguous);
- it is above their total by at most 5 % of it (:data:`EXCESS_TOLERANCE`): all are paid,
  the rest is the excess.

With a reference, that is all. With a number, an amount other than the exact balances of
the invoices it pays also needs the payer recognized as that customer (its IBAN known for
it, or its name close to it): an unrelated number in the text (a month, a supplier's own
invoice number in a refund) with an amount near the balance would otherwise record a
payment.

A larger excess is only suggested (with, when some exist, the customer's other invoices
that make up the difference exactly). Number evidence is also only suggested when the
counterparty IBAN is known for another customer, or for a customer with exactly one other
invoice of exactly the amount while the numbers found do not add up to it (a mistyped
number), when a number finds invoices of several customers that neither the IBAN nor the
name tells apart (a name that tells them apart makes a suggestion, not a match), or when
one number finds several invoices. IBAN evidence is matched only with an exact and
unambiguous amount: one invoice and no combination, or no invoice and one combination,
the search complete. An earlier rule that found something makes a later rule's sure
answer a suggestion. Every other credit with a candidate is *suggested*: up to three
candidates, best first, each with a confidence in 0..1 (see the ``CONFIDENCE_*``
constants). An unmatched credit names the customer when its IBAN is known for exactly one.
"""

# The package, by role: ``values`` (what the rules take and answer), ``text`` (references,
# IBANs, names and invoice numbers as people and banks type them), ``amounts`` (balances,
# oldest first, exact combinations), ``book`` (the OpenBook and its indexes), ``rules`` (the
# decision and its thresholds). Callers import from here.

from relance.payment_matcher.matching.amounts import (
    MAX_COMBINATION,
    SEARCH_BUDGET,
    allocate_oldest_first,
    balance_here,
    exact_combinations,
    oldest_first,
)
from relance.payment_matcher.matching.book import (
    NAME_BLOCK_LIMIT,
    NAME_CANDIDATE_FLOOR,
    NAME_MARGIN,
    NAME_MIN_SCORE,
    NAME_RARE_BLOCK,
    OpenBook,
)
from relance.payment_matcher.matching.rules import (
    CONFIDENCE_AMBIGUOUS,
    CONFIDENCE_EXACT_AMONG_SEVERAL,
    CONFIDENCE_FEES,
    CONFIDENCE_IBAN_COMBINATION,
    CONFIDENCE_IBAN_EXACT,
    CONFIDENCE_LARGE_EXCESS,
    CONFIDENCE_NUMBER,
    CONFIDENCE_OLDEST_FIRST,
    CONFIDENCE_OVERRULED,
    CONFIDENCE_PAYER_CONFLICT,
    CONFIDENCE_REFERENCE,
    CONFIDENCE_SETTLED_BY_NAME,
    CONFIDENCE_UNCONFIRMED,
    EXCESS_TOLERANCE,
    FEE_ABSOLUTE,
    FEE_RELATIVE,
    MAX_CANDIDATES,
    NAME_WEIGHT,
)
from relance.payment_matcher.matching.text import (
    NAME_NOISE,
    NUMBER_WORDS,
    SHORT_NUMBER_DIGITS,
    NumberKey,
    NumberToken,
    credit_lookup_keys,
    find_number_tokens,
    find_references,
    invoice_lookup_keys,
    name_key,
    name_words,
    normalize_iban,
    normalize_reference,
    number_key,
    payer_lookup_keys,
    references_of,
    token_finds,
)
from relance.payment_matcher.matching.values import (
    UNMATCHED,
    Allocation,
    Candidate,
    Credit,
    Evidence,
    Match,
    MatchState,
    OpenInvoice,
    Payer,
)

__all__ = [
    "CONFIDENCE_AMBIGUOUS",
    "CONFIDENCE_EXACT_AMONG_SEVERAL",
    "CONFIDENCE_FEES",
    "CONFIDENCE_IBAN_COMBINATION",
    "CONFIDENCE_IBAN_EXACT",
    "CONFIDENCE_LARGE_EXCESS",
    "CONFIDENCE_NUMBER",
    "CONFIDENCE_OLDEST_FIRST",
    "CONFIDENCE_OVERRULED",
    "CONFIDENCE_PAYER_CONFLICT",
    "CONFIDENCE_REFERENCE",
    "CONFIDENCE_SETTLED_BY_NAME",
    "CONFIDENCE_UNCONFIRMED",
    "EXCESS_TOLERANCE",
    "FEE_ABSOLUTE",
    "FEE_RELATIVE",
    "MAX_CANDIDATES",
    "MAX_COMBINATION",
    "NAME_BLOCK_LIMIT",
    "NAME_CANDIDATE_FLOOR",
    "NAME_MARGIN",
    "NAME_MIN_SCORE",
    "NAME_NOISE",
    "NAME_RARE_BLOCK",
    "NAME_WEIGHT",
    "NUMBER_WORDS",
    "SEARCH_BUDGET",
    "SHORT_NUMBER_DIGITS",
    "UNMATCHED",
    "Allocation",
    "Candidate",
    "Credit",
    "Evidence",
    "Match",
    "MatchState",
    "NumberKey",
    "NumberToken",
    "OpenBook",
    "OpenInvoice",
    "Payer",
    "allocate_oldest_first",
    "balance_here",
    "credit_lookup_keys",
    "exact_combinations",
    "find_number_tokens",
    "find_references",
    "invoice_lookup_keys",
    "name_key",
    "name_words",
    "normalize_iban",
    "normalize_reference",
    "number_key",
    "oldest_first",
    "payer_lookup_keys",
    "references_of",
    "token_finds",
]
