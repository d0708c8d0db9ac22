"""The search: symmetry-constrained candidates and the paper's two-stage optimisation.

What it holds
    :mod:`~csp.search.generate` (space group + Wyckoff families, vectorised templates, the paper's distance,
    angle and volume constraints), :mod:`~csp.search.two_stage` (the outer/inner search, ``run_search``),
    :mod:`~csp.search.optimizers` (RS, PSO, GA, BO behind one ask/tell interface),
    :mod:`~csp.search.fitness` (FV), :mod:`~csp.search.parameters` (the campaign fields a person chooses),
    :mod:`~csp.search.budget` (what a request costs, checked before work).

What it may import
    :mod:`csp.structures` and :mod:`csp.models` (the scorer arrives as an argument); never the potentials,
    ``storage`` or ``flows`` (``tests/csp/test_house.py`` holds the rule).
"""
