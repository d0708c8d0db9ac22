"""No blind spots in the search space: Wyckoff assignments sampled across every element, and the atom cap
reported rather than silent."""

from math import comb

import numpy as np
import pytest

from csp.errors import InputError
from csp.search.generate import enumerate_families, wyckoff_assignments
from csp.search.two_stage import (
    InMemorySink,
    SearchConfig,
    campaign_families,
    check_search_space,
    excluded_by_atom_cap,
    run_search,
)
from csp.structures.composition import parse_composition


class FlatScorer:
    """TEST FIXTURE ONLY: every cell scores 0 eV/atom with P_syn 0.5 (the cap does not depend on scores)."""

    def enthalpy(self, numbers, lattices, frac):
        return np.zeros(len(lattices))

    def synthesizability(self, crystals):
        return np.full(len(crystals), 0.5), np.zeros(len(crystals))


def _sites(family, symbol):
    return sorted(label for s, label in family.sites if s == symbol)


@pytest.mark.slow  # builds pyxtal's group tables of a whole crystal system
def test_thmn12_family_of_ndal8cu4_is_listed_and_reached():
    # ThMn12 type: Nd 2a, Cu 8f, Al 8i + 8j in I4/mmm with Z = 2 (26 atoms); counts in formula order Nd, Al, Cu
    listed = wyckoff_assignments((2, 16, 8), 139)
    thmn12 = [
        a for a in listed if a[0] in (("2a",), ("2b",)) and set(a[1]) == {"8i", "8j"} and a[2] == ("8f",)
    ]
    assert len(listed) == 550 and len(thmn12) == 2  # Nd on 2a or on the equivalent 2b
    # with the default 8 kept per (Z, group) a campaign holds one of them with probability 1 - C(548, 8)/C(550, 8)
    assert 1 - comb(548, 8) / comb(550, 8) > 0.028
    families = campaign_families(
        parse_composition("NdAl8Cu4"), SearchConfig(strategy="fixed", crystal_system="tetragonal", seed=53)
    )
    found = [
        f
        for f in families
        if f.spacegroup == 139 and _sites(f, "Al") == ["8i", "8j"] and _sites(f, "Cu") == ["8f"]
    ]
    assert [f.wyckoff for f in found] == ["Nd:2a Al:8j Al:8i Cu:8f"]


@pytest.mark.slow  # builds pyxtal's group tables of a whole crystal system
def test_ssn3se2_with_sn_on_1f_and_2g_is_reached():
    listed = wyckoff_assignments((1, 3, 2), 187)
    m = sum(set(a[1]) == {"1f", "2g"} for a in listed)
    assert (len(listed), m) == (1206, 45)  # P(a campaign holds one) = 1 - C(1161, 8)/C(1206, 8) = 0.26
    families = campaign_families(
        parse_composition("SSn3Se2"), SearchConfig(strategy="fixed", crystal_system="hexagonal", seed=12)
    )
    found = [f.wyckoff for f in families if f.spacegroup == 187 and _sites(f, "Sn") == ["1f", "2g"]]
    assert found == ["S:1a Sn:2g Sn:1f Se:1d Se:1b"]


def test_kept_assignments_vary_in_every_element_not_only_the_last():
    comp = parse_composition("NdAl8Cu4")
    for seed in range(3):
        fams = enumerate_families(comp, [2], [139], np.random.default_rng(seed))
        assert len(fams) == 8
        for symbol in ("Nd", "Al", "Cu"):
            assert len({tuple(_sites(f, symbol)) for f in fams}) > 1, (seed, symbol)
    a = enumerate_families(comp, [2], [139], np.random.default_rng(7))
    assert a == enumerate_families(comp, [2], [139], np.random.default_rng(7))  # seeded


def test_small_sets_are_kept_whole():
    # rock salt MgO in Fm-3m, Z = 4: only Mg/O on 4a/4b (either way round) plus 8c is too big for 4 atoms
    listed = wyckoff_assignments((4, 4), 225)
    fams = enumerate_families(parse_composition("MgO"), [4], [225], np.random.default_rng(0))
    assert len(fams) == len(listed) == 2


@pytest.mark.slow  # builds pyxtal's group tables of a whole crystal system
def test_atom_cap_is_a_parameter_and_what_it_drops_is_counted():
    comp = parse_composition("MgAl2O4")
    spinel = ("Mg:8a Al:16d O:32e", 227)
    assert (
        wyckoff_assignments((8, 16, 32), 227) is not None and len(wyckoff_assignments((8, 16, 32), 227)) == 4
    )
    capped = SearchConfig(strategy="fixed", crystal_system="cubic", formula_units=(1, 8))
    assert capped.max_atoms == 40
    kept = campaign_families(comp, capped)
    assert all(f.num_atoms <= 40 for f in kept) and 227 not in {f.spacegroup for f in kept}
    cut = excluded_by_atom_cap(comp, capped, kept)
    assert cut["max_atoms"] == 40 and cut["formula_units"] == [6, 7, 8]
    assert cut["families"] > 0 and 227 in cut["spacegroup_numbers"]
    assert cut["space_groups"] == len(cut["spacegroup_numbers"])
    wide = SearchConfig(strategy="fixed", crystal_system="cubic", formula_units=(1, 8), max_atoms=56)
    families = campaign_families(comp, wide)
    assert spinel in {(f.wyckoff, f.spacegroup) for f in families}  # all 4 Fd-3m assignments are kept
    assert excluded_by_atom_cap(comp, wide, families)["formula_units"] == []


def test_search_result_says_what_the_cap_excluded():
    cfg = SearchConfig(
        strategy="fixed",
        crystal_system="cubic",
        outer_optimizer="rs",
        inner_optimizer="rs",
        outer_steps=1,
        inner_steps=10,
        batch_size=10,
        formula_units=(1, 8),
        max_atoms=20,
    )
    result = run_search("MgO", cfg, FlatScorer(), InMemorySink(), campaign_id="cap")
    assert result.excluded["formula_units"] == []  # MgO: 8 formula units are 16 atoms
    result = run_search("MgAl2O4", cfg, FlatScorer(), InMemorySink(), campaign_id="cap")
    assert result.excluded["formula_units"] == [3, 4, 5, 6, 7, 8]
    assert result.excluded["families"] > 0


@pytest.mark.parametrize(
    ("formula", "config", "families"),
    [
        ("MgO", {"crystal_system": "cubic", "formula_units": (1, 2)}, True),
        ("LiNaKRbCs", {"crystal_system": "cubic", "formula_units": (1, 1)}, False),
        ("H2O", {"crystal_system": "cubic", "formula_units": (1, 1)}, False),
        ("H2O", {"crystal_system": "hexagonal", "formula_units": (1, 2)}, True),
        ("MgO", {"crystal_system": "cubic", "formula_units": (3, 3), "max_atoms": 4}, False),
    ],
)
def test_the_search_space_check_agrees_with_the_families_and_run_search(formula, config, families):
    """The check a campaign makes before anything is written (flows.campaigns.validate) refuses exactly the
    requests with no family, with the sentence run_search would have raised."""
    comp = parse_composition(formula)
    cfg = SearchConfig(outer_steps=1, inner_steps=2, batch_size=2, **config)
    assert bool(campaign_families(comp.reduced()[0], cfg)) is families
    if families:
        check_search_space(comp, cfg)
        return
    with pytest.raises(InputError, match="No space group in the cubic crystal system admits") as checked:
        check_search_space(comp, cfg)
    with pytest.raises(InputError) as searched:
        run_search(formula, cfg, FlatScorer(), InMemorySink())
    assert str(checked.value) == str(searched.value)
