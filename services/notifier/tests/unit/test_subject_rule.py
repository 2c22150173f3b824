"""An organization's subject must show the invoice number: the rule, case by case."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relance.common.events.types import StepKind
from relance.notifier.email.rendering import builtin_source, subject_number_problem

SHOWN = [
    "{{ number }}",
    "{{number}}",
    "Facture {{  number  }} impayée",
    "{{- number -}}",
    "{{ customer }} : {{ number }}",
    "{{ number }}{% if days_late %} ({{ days_late }} jours){% endif %}",
]
NOT_SHOWN = [
    "Votre facture",
    "{{ customer }}",
    "{{ number | upper }}",
    "{{ number[:4] }}",
    "{{ number ~ '' }}",
    "{% if days_late %}{{ number }}{% endif %}",
    "{% for x in [1] %}{{ number }}{% endfor %}",
    "{# {{ number }} #}",
    "{% raw %}{{ number }}{% endraw %}",
    "{% set number = 'X' %}{{ number }}",
    "number",
]


@pytest.mark.parametrize("subject", SHOWN)
def test_a_subject_that_always_shows_the_number_is_accepted(subject):
    assert subject_number_problem(subject) is None


@pytest.mark.parametrize("subject", NOT_SHOWN)
def test_a_subject_that_may_hide_or_change_the_number_is_refused(subject):
    assert subject_number_problem(subject) is not None


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("kind", list(StepKind))
def test_every_built_in_subject_follows_the_rule(kind, language):
    # what GET answers can be saved back unchanged
    assert subject_number_problem(builtin_source(kind, language).subject) is None


words = st.text(st.characters(blacklist_characters="{}%#"), max_size=30)


@given(before=words, after=words, inside=st.sampled_from(["", " ", "  ", "\t", "\n"]))
def test_any_text_around_a_bare_number_is_accepted(before, after, inside):
    assert subject_number_problem(f"{before}{{{{{inside}number{inside}}}}}{after}") is None


@given(text=words)
def test_text_without_the_variable_is_refused(text):
    assert subject_number_problem(text) is not None
