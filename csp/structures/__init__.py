"""Crystals and their symmetry: compositions, elements, cells, space groups, matching and file formats.

What it holds
    :mod:`~csp.structures.composition` (formulas), :mod:`~csp.structures.elements` (element data),
    :mod:`~csp.structures.crystal` (the :class:`~csp.structures.crystal.Crystal` value: lattice in Angstrom,
    atomic numbers, fractional coordinates), :mod:`~csp.structures.symmetry` (spglib at the one tolerance),
    :mod:`~csp.structures.matching` (StructureMatcher, deduplicated ranking),
    :mod:`~csp.structures.validity` (the geometry rules every candidate and every ingested cell obeys),
    :mod:`~csp.structures.prototypes` (decorations of the AFLOW prototype library),
    :mod:`~csp.structures.io` (CIF, POSCAR, extxyz, JSON), :mod:`~csp.structures.xrd` (simulated Cu K-alpha
    powder patterns and their similarity).

What it may import
    Nothing else in ``csp`` but :mod:`csp.errors` (``tests/csp/test_house.py`` holds the rule): every other
    group builds on this one.
"""
