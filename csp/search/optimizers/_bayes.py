"""Bayesian optimisation with botorch: a Gaussian process and (log) expected improvement."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from csp.search.optimizers._base import Optimizer, Sampler, Space


class BayesianOptimization(Optimizer):
    """Bayesian optimisation: ``SingleTaskGP`` on the told points, then expected improvement.

    Continuous spaces: a batch of ``n`` points maximising ``qLogExpectedImprovement`` over the unit cube
    (``optimize_acqf``). Finite spaces: the GP is fitted on the choices' feature rows and the ``n``
    unproposed choices with the highest ``LogExpectedImprovement`` are returned (the acquisition is
    maximised exactly over the finite set). The first ``n_init`` points are random. To bound the cost of a
    step, the GP is fitted on at most ``max_train`` points (the best ones) with at most ``fit_maxiter``
    L-BFGS iterations.

    Args:
        n_init: random points before the first model-based proposal (default: the first ``ask``).
        max_train: cap on GP training points.
        fit_maxiter: cap on hyperparameter-fit iterations.
        num_restarts: acquisition-optimisation restarts (continuous spaces).
        raw_samples: raw samples to seed them.
        acq_maxiter: cap on acquisition-optimisation iterations (continuous spaces).
        torch_threads: torch intra-op threads while a step runs (restored afterwards). The GP has at most
            ``max_train`` points, too few to gain from threads; one thread avoids contention with the
            scoring threads (see benchmarks/results/campaign_full.md).
    """

    name = "bo"

    def __init__(
        self,
        space: Space,
        rng: np.random.Generator | int,
        sampler: Sampler | None = None,
        *,
        n_init: int | None = None,
        max_train: int = 256,
        fit_maxiter: int = 50,
        acq_maxiter: int = 50,
        num_restarts: int = 4,
        raw_samples: int = 128,
        torch_threads: int = 1,
    ) -> None:
        super().__init__(space, rng, sampler)
        self.torch_threads = torch_threads
        self.n_init, self.max_train, self.fit_maxiter = n_init, max_train, fit_maxiter
        self.num_restarts, self.raw_samples, self.acq_maxiter = num_restarts, raw_samples, acq_maxiter

    def _fit(self) -> Any:
        import torch
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood

        y = np.asarray(self.Y)
        keep = np.argsort(y, kind="stable")[: self.max_train]
        X = torch.as_tensor(self._features(np.asarray(self.X)[keep]), dtype=torch.float64)
        Y = -torch.as_tensor(y[keep], dtype=torch.float64).unsqueeze(-1)  # botorch maximises
        model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": self.fit_maxiter}})
        return model, Y.max()

    def _ask(self, n: int) -> np.ndarray:
        if self.n_init is None:
            self.n_init = n
        if len(self.Y) < max(self.n_init, 2) or np.ptp(self.Y) == 0:
            return self._random(n)
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.torch_threads)
        try:
            return self._model_ask(n)
        finally:
            torch.set_num_threads(before)

    def _model_ask(self, n: int) -> np.ndarray:
        import torch
        from botorch.utils.sampling import manual_seed

        with manual_seed(int(self.rng.integers(2**31 - 1))), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, best_f = self._fit()
            if self.finite:
                from botorch.acquisition.analytic import LogExpectedImprovement

                free = np.setdiff1d(
                    np.arange(self.space.size), np.fromiter(self.proposed, int, len(self.proposed))
                )
                if len(free) == 0:
                    return free.astype(np.int64)
                acq = LogExpectedImprovement(model, best_f=best_f)
                cand = torch.as_tensor(self.space.features[free], dtype=torch.float64).unsqueeze(1)
                with torch.no_grad():
                    values = torch.cat([acq(chunk) for chunk in cand.split(2048)]).numpy()
                order = np.argsort(-values, kind="stable")[:n]
                return free[order].astype(np.int64)
            from botorch.acquisition.logei import qLogExpectedImprovement
            from botorch.optim import optimize_acqf

            acq = qLogExpectedImprovement(model, best_f=best_f)
            bounds = torch.stack([torch.zeros(self.dim), torch.ones(self.dim)]).to(torch.float64)
            x, _ = optimize_acqf(
                acq,
                bounds=bounds,
                q=n,
                num_restarts=self.num_restarts,
                raw_samples=self.raw_samples,
                options={"maxiter": self.acq_maxiter},
            )
        return x.detach().numpy().astype(np.float64)

    def _state(self) -> dict[str, Any]:
        return {"n_init": self.n_init}

    def _load(self, state: dict[str, Any]) -> None:
        self.n_init = state["n_init"]
