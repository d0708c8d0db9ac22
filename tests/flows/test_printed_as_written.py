"""Values from the lake print as written (issue 22): a composition, a stored reason or parameter, or a
``csp sql`` value or column name holding rich markup (``[red]``, ``[link=...]``) or an emoji code is never
read as markup by ``campaign list``, ``campaign show`` or ``csp sql``."""

from __future__ import annotations

import pytest

from storage.campaigns import record_event
from storage.lake import Lake
from tests.flows.cli_process import invoke_csp

REASON = "boom [red]x[/red] [link=http://example.org]y[/link] :x:"


@pytest.fixture
def marked_lake(tmp_path):
    home = tmp_path / "home"
    lake = Lake(home).init()
    record_event(
        lake,
        "m1",
        composition="Mg[red]O",
        status="failed",
        parameters={"composition": "Mg[red]O", "note": "[bold]p"},
        run_id="r",
        reason=REASON,
    )
    return home


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["campaign", "list"], ["Mg[red]O", REASON]),
        (["campaign", "show", "m1"], ["m1: Mg[red]O, status failed (" + REASON + ")", '"note": "[bold]p"']),
        (["sql", "SELECT '[red]x[/red]' AS \"[b]col\", '[b]' AS b"], ["[red]x[/red]", "[b]col", "│ [b] "]),
    ],
    ids=["campaign list", "campaign show", "sql"],
)
def test_lake_values_with_markup_print_literally(marked_lake, args, shown):
    result = invoke_csp(marked_lake, *args)
    assert result.returncode == 0, result.stderr
    for text in shown:
        assert text in result.stdout
