"""The Prefect campaign summary artifact: the convergence plot as an image, the text chart without one."""

from __future__ import annotations

import pytest

from tests.storage.history_fixtures import make_history_lake


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return make_history_lake(tmp_path_factory.mktemp("history") / "home")


def test_campaign_summary_shows_the_plot_not_ascii(history, monkeypatch):
    from flows.deployments.artifacts import convergence_image, summary_markdown

    monkeypatch.setenv("CSP_HOME", str(history.root))
    image = convergence_image("hist-a")
    assert image is not None and image.startswith("![convergence of hist-a](data:image/png;base64,")
    report = {
        "campaign_id": "hist-a",
        "composition": "MgO",
        "status": "completed",
        "n_candidates": 6,
        "elapsed_s": 5.0,
        "invalid_share": 1 / 6,
        "top": [],
        "best_curve": [0.07, 0.07],
        "parameters": {
            "alpha": 0.5,
            "strategy": "fixed",
            "crystal_system": "cubic",
            "outer_optimizer": "bo",
            "inner_optimizer": "pso",
            "outer_steps": 2,
            "inner_steps": 3,
            "seed": 0,
            "dhf_source": "exp",
        },
    }
    md = summary_markdown(report, image=image)
    assert image in md and "```text" not in md and "## Convergence" in md
    assert "```text" in summary_markdown(report)  # without a plot the text chart stays
