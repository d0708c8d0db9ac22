"""The Prefect campaign summary artifact: the convergence plot as an image, the text chart without one, and
each entry's cell and powder pattern."""

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
    report = dict(_REPORT)
    md = summary_markdown(report, image=image)
    assert image in md and "```text" not in md and "## Convergence" in md
    assert "```text" in summary_markdown(report)  # without a plot the text chart stays


_REPORT = {
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


def test_summary_shows_each_entry_with_its_pattern_and_card(history):
    from csp.structures.xrd import simulate
    from flows.deployments.artifacts import summary_markdown, xrd_section
    from flows.results import result_of

    result = result_of(history, "hist-a")
    section = xrd_section(result, "hist-a")
    assert section.startswith("## What an experimentalist checks first")
    assert "csp plot structures hist-a --out DIR" in section
    headings = [line for line in section.splitlines() if line.startswith("### ")]
    assert [h.split(":")[0] for h in headings] == [f"### rank {e.rank}" for e in result.top]
    assert section.count("](data:image/png;base64,") == len(result.top)
    # the strongest lines listed are those of the entry's simulated pattern: rock salt's (200) first at 100
    rank1 = section.split(headings[0])[1].split("###")[0]
    for t, i, hkl in simulate(result.top[0].structure).strongest(5):
        assert f"| {t:.2f} | ({hkl}) | {i:.0f} |" in rank1
    assert "| (200) | 100 |" in rank1
    text_only = xrd_section(result, "hist-a", images=False)
    assert "data:image" not in text_only and text_only.count("| 2θ (°) |") == len(result.top)
    report = {**_REPORT, "top": [e.public() for e in result.top]}
    md = summary_markdown(report, checks=section)
    assert md.index("## What an experimentalist") < md.index("## Query the candidates")
