"""Formula parsing: known formulas, bad input, and property-based round trips."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csp.structures import elements
from csp.structures.composition import CompositionError, parse_composition


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MgO", {"Mg": 1, "O": 1}),
        ("BaZrO3", {"Ba": 1, "Zr": 1, "O": 3}),
        ("K2Se", {"K": 2, "Se": 1}),
        ("Ca(OH)2", {"Ca": 1, "O": 2, "H": 2}),
        ("  GaAs ", {"Ga": 1, "As": 1}),
        ("Mg(O)", {"Mg": 1, "O": 1}),
        ("MgOMg", {"Mg": 2, "O": 1}),
    ],
)
def test_parses_known_formulas(text, expected):
    assert parse_composition(text).as_dict() == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("Xx", "Unknown"),
        ("Mgo", "Unknown"),
        ("Mg0O", "zero"),
        ("Mg1.5O", "whole number"),
        ("Ca(OH", "Unclosed"),
        ("MgO)", "Unbalanced"),
        ("()", "Empty brackets"),
        ("2MgO", "does not follow"),
        ("Mg-O", "Unexpected"),
        ("C41", r"more than max_atoms \(40 atoms per cell, the default\) allows"),
    ],
)
def test_rejects_bad_formulas_with_a_named_problem(text, fragment):
    with pytest.raises(CompositionError, match=fragment):
        parse_composition(text)


def test_max_atoms_is_a_parameter():
    assert parse_composition("C41", max_atoms=50).num_atoms == 41
    with pytest.raises(CompositionError):
        parse_composition("BaZrO3", max_atoms=4)


def test_reduced_numbers_and_formula_units():
    comp = parse_composition("Mg2O2")
    reduced, factor = comp.reduced()
    assert reduced.formula == "MgO" and factor == 2
    assert reduced.numbers(2).tolist() == [12, 12, 8, 8]
    assert parse_composition("BaZrO3").max_formula_units(40) == 8


def test_element_data_is_positive_for_supported_elements():
    z = np.arange(1, elements.MAX_SUPPORTED_Z + 1)
    assert (elements.covalent_radius(z) > 0).all()
    assert (elements.atomic_volume(z) > 0).all()
    assert elements.symbol(12) == "Mg" and elements.atomic_number("O") == 8


_SYMBOLS = [elements.symbol(z) for z in range(1, elements.MAX_SUPPORTED_Z + 1)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_SYMBOLS), st.integers(min_value=1, max_value=9)),
        min_size=1,
        max_size=4,
        unique_by=lambda t: t[0],
    )
)
def test_round_trip_of_random_compositions(pairs):
    expected = dict(pairs)
    comp = parse_composition("".join(f"{s}{n}" for s, n in pairs))
    assert comp.as_dict() == expected
    assert parse_composition(comp.formula).as_dict() == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("MgOBaZrHCa()0123456789.- xX\u00c9")), max_size=20) | st.text())
def test_garbage_raises_only_composition_error(text):
    try:
        comp = parse_composition(text)
    except CompositionError:
        return
    assert comp.num_atoms >= 1


def test_non_string_is_a_composition_error():
    with pytest.raises(CompositionError):
        parse_composition(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "named", "hint"),
    [
        ("ＭｇＯ", "'Ｍ' (FULLWIDTH LATIN CAPITAL LETTER M, U+FF2D) at character 1", "did you mean 'MgO'?"),
        ("MgΟ", "'Ο' (GREEK CAPITAL LETTER OMICRON, U+039F) at character 3", "did you mean 'MgO'?"),
        ("МgO", "'М' (CYRILLIC CAPITAL LETTER EM, U+041C) at character 1", "did you mean 'MgO'?"),
        ("BaZrO₃", "'₃' (SUBSCRIPT THREE, U+2083) at character 6", "did you mean 'BaZrO3'?"),
        ("Mg\u00a0O", "(NO-BREAK SPACE, U+00A0) at character 3", "plain ASCII letters and digits."),
    ],
)
def test_a_non_ascii_formula_names_the_character_and_the_plain_spelling(text, named, hint):
    """Issue 22: a full-width letter or a look-alike is blamed on the formula, by name and place; the hint
    is given only where the plain spelling parses."""
    with pytest.raises(CompositionError) as caught:
        parse_composition(text)
    message = str(caught.value)
    assert message.startswith(f"Formula {text!r} holds ") and named in message and message.endswith(hint)
