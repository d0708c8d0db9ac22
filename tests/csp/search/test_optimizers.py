"""Every optimizer beats or matches random search on cheap analytic functions, and its state round-trips."""

import json

import numpy as np
import pytest

from csp.search.optimizers import OPTIMIZERS, ContinuousSpace, FiniteSpace, make_optimizer

DIM = 4
TARGET = np.array([0.3, 0.7, 0.5, 0.2])
FAST_BO = {"num_restarts": 2, "raw_samples": 32, "fit_maxiter": 30, "acq_maxiter": 20}


def sphere(x):
    return ((np.atleast_2d(x) - TARGET) ** 2).sum(axis=1)


def run(name, space, f, steps, batch, seed, **kw):
    if name == "bo":
        kw = {**FAST_BO, **kw}
    opt = make_optimizer(name, space, np.random.default_rng(seed), **kw)
    for _ in range(steps):
        x = opt.ask(batch)
        if len(x) == 0:
            break
        opt.tell(x, f(x))
    return opt


@pytest.mark.parametrize("name", ["pso", "ga", "bo"])
def test_continuous_beats_random_search(name):
    steps, batch = (5, 4) if name == "bo" else (20, 10)
    seeds = [0] if name == "bo" else [0, 1, 2]
    best = [run(name, ContinuousSpace(DIM), sphere, steps, batch, s).best[1] for s in seeds]
    rs = [run("rs", ContinuousSpace(DIM), sphere, steps, batch, s).best[1] for s in seeds]
    assert np.median(best) <= np.median(rs)


FEATURES = np.random.default_rng(42).random((300, 3))


def finite_f(idx):
    return sphere(np.pad(FEATURES[np.asarray(idx)], ((0, 0), (0, 1)), constant_values=0.2))


@pytest.mark.parametrize("name", ["pso", "ga", "bo"])
def test_finite_beats_random_search(name):
    space = FiniteSpace(FEATURES)
    best = [run(name, space, finite_f, 6, 5, s).best[1] for s in range(3)]
    rs = [run("rs", space, finite_f, 6, 5, s).best[1] for s in range(3)]
    assert np.median(best) <= np.median(rs)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_finite_space_never_repeats_and_exhausts(name):
    space = FiniteSpace(FEATURES[:12])
    opt = make_optimizer(name, space, 0, **(FAST_BO if name == "bo" else {}))
    seen = []
    for _ in range(5):
        x = opt.ask(4)
        if len(x) == 0:
            break
        seen += x.tolist()
        opt.tell(x, finite_f(x))
    assert sorted(seen) == list(range(12))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("finite", [False, True])
def test_state_round_trips_through_json(name, finite):
    space = FiniteSpace(FEATURES) if finite else ContinuousSpace(DIM)
    f = finite_f if finite else sphere
    a = run(name, space, f, 3, 4, 5)
    state = json.loads(json.dumps(a.state_dict()))
    b = make_optimizer(name, space, 99, **(FAST_BO if name == "bo" else {}))
    b.load_state_dict(state)
    xa, xb = a.ask(4), b.ask(4)
    assert np.allclose(xa, xb, atol=1e-6)
    a.tell(xa, f(xa))
    b.tell(xb, f(xb))
    assert a.best[1] == pytest.approx(b.best[1])


def test_sampler_feeds_random_proposals_and_bad_input_is_refused():
    calls = []

    def sampler(n, rng):
        calls.append(n)
        return np.full((n, DIM), 0.25)

    opt = make_optimizer("rs", ContinuousSpace(DIM), 0, sampler)
    assert np.allclose(opt.ask(3), 0.25) and calls == [3]
    with pytest.raises(ValueError, match="finite"):
        opt.tell(np.zeros((1, DIM)), [np.nan])
    with pytest.raises(ValueError, match="Unknown optimizer"):
        make_optimizer("sa", ContinuousSpace(2), 0)
    with pytest.raises(ValueError, match="belongs"):
        make_optimizer("ga", ContinuousSpace(DIM), 0).load_state_dict(opt.state_dict())
