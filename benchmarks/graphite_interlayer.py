"""The 12-nearest-neighbour limit, measured: graphite's predictions against its interlayer spacing.

Usage: ``PYTHONPATH=. python benchmarks/graphite_interlayer.py`` (shipped models, AB graphite, a = 2.46 A).
Each atom's 12 nearest neighbours (3 at 1.42 A, 6 at 2.46 A, 3 at 2.84 A) lie in its own layer, so the
graph, and every prediction, is the same for any interlayer spacing above 2.84 A.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from csp.models.infer import OnnxModels
from csp.structures.crystal import Crystal
from csp.structures.validity import GeometryWarning


def main() -> None:
    scorer = OnnxModels(
        dft="onnx_models/ALIGNN-DFT-2026.11-Eform",
        exp="onnx_models/ALIGNN-ExpTL-2026.11-Eform",
        pu="onnx_models/ALIGNN-PU-2026.11-Psyn",
        threads=1,
    )
    a = 2.46
    for d in (3.35, 6.7, 10.0, 15.0, 20.0, 30.0):
        lattice = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, 2 * d]])
        frac = [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = scorer.score([Crystal(lattice, [6, 6, 6, 6], frac)])
        flagged = any(issubclass(w.category, GeometryWarning) for w in caught)
        sys.stdout.write(
            f"interlayer {d:5.2f} A: dHf(dft) {r.dhf_dft[0]:.6f} dHf(exp) {r.dhf_exp[0]:.6f} eV/atom, "
            f"P_syn {r.p_syn[0]:.6f}, vacuum flag {flagged}\n"
        )


if __name__ == "__main__":
    main()
