"""The paper's evaluation: Table 1 and Figs. 2-4 measured on this project, and the report that shows them.

What it holds
    :mod:`~csp.evaluation.plan` (the presets of the paper report: compounds, strategies, alphas, seeds and
    budgets, the campaigns they make, and the paper's own numbers), :mod:`~csp.evaluation.table1` (the 17
    validation compounds, the success test, why a miss was missed, accuracy per column),
    :mod:`~csp.evaluation.figures` (the data of Figs. 2-4: parity metrics, convergence bands, first hits,
    energy distributions, errors against experiment), :mod:`~csp.evaluation.report` (the Markdown report and
    its PNG figures, made from the report's JSON alone).

What it may import
    every other room (:mod:`csp.structures`, :mod:`csp.models`, :mod:`csp.search`, :mod:`csp.potentials`) and
    :mod:`csp.plots`; never ``storage``, ``flows`` or ``benchmarks`` (``tests/csp/test_house.py`` holds the
    rule). The faces read the lake and hand rows and arrays in.
"""
