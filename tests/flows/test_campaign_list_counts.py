"""Issue 22 (fresh-user trial): ``csp campaign list`` counts the candidates a campaign stored, whatever its
state. An interrupted, killed (stale), failed or still running campaign's last event carries no count (only
``completed`` records one), and the column used to show it empty although its rows were in the lake."""

from __future__ import annotations

import pytest

from storage.campaigns import campaign_row, list_campaigns, record_event
from storage.lake import Lake
from tests.flows.cli_process import invoke_csp

TINY = dict(composition="MgO", outer_steps=3, inner_steps=6, batch_size=6, formula_units_max=1)
TINY |= dict(refine=False, gap_probes=0)


def stored(lake: Lake, cid: str) -> int:
    """The count a user gets from SQL over the campaign's candidate rows (the scored structures)."""
    sql = "SELECT count(*) AS n FROM candidates WHERE campaign_id = ? AND stage = 'inner'"
    return lake.query(sql, [cid]).to_pylist()[0]["n"]


def listed(home, cid: str) -> dict[str, str]:
    """The row of ``cid`` in ``csp campaign list`` as printed: column name -> cell text."""
    result = invoke_csp(home, "campaign", "list", env={"COLUMNS": "400"})
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(("┃", "│"))]
    header = [cell.strip() for cell in lines[0].strip("┃").split("┃")]
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if cells[0] == cid:
            return dict(zip(header, cells, strict=True))
    raise AssertionError(f"{cid} not listed:\n{result.stdout}")


def stop_after_first_family(exc: BaseException):
    def progress(p):
        if p["outer_step"] == 0:
            raise exc

    return progress


@pytest.mark.slow
def test_every_state_lists_the_candidates_stored_in_the_lake(tmp_path):
    from flows.campaigns import run_campaign
    from flows.settings import Settings

    settings = Settings(home=tmp_path)
    lake = Lake(tmp_path)
    # Ctrl-C after the first family: `interrupted`, with that family's rows stored; an error after it:
    # `failed`; killed outright after it: its last event says `running`, its process is gone (`stale`)
    for campaign_id, error in (
        ("ctrl-c", KeyboardInterrupt()),
        ("broke", RuntimeError("x")),
        ("killed", KeyboardInterrupt()),
    ):
        with pytest.raises(type(error)):
            run_campaign(
                TINY, campaign_id=campaign_id, settings=settings, progress=stop_after_first_family(error)
            )
    row = campaign_row(lake, "killed")
    record_event(
        lake, "killed", composition="MgO", status="running", parameters={}, run_id="gone", reason=None
    )
    run_campaign(TINY, campaign_id="done", settings=settings)

    states = {"ctrl-c": "interrupted", "broke": "failed", "killed": "stale", "done": "completed"}
    table = {r["campaign_id"]: r for r in list_campaigns(lake).to_pylist()}
    for cid, state in states.items():
        n = stored(lake, cid)
        assert n == (18 if state == "completed" else 6), (cid, n)  # one family of 6, or all 3
        assert table[cid]["n_candidates"] == n, cid
        assert campaign_row(lake, cid)["n_candidates"] == n, cid  # `campaign show`, csp.query, artifacts
        shown = listed(tmp_path, cid)
        assert shown["status"] == state, shown
        assert shown["candidates"] == str(n), shown
    assert row is not None and row["status"] == "interrupted"


def test_a_campaign_without_rows_lists_zero(tmp_path):
    """A campaign that failed before it scored anything lists 0 candidates (not an empty cell)."""
    lake = Lake(tmp_path).init()
    record_event(lake, "early", composition="MgO", status="failed", parameters={}, run_id="r", reason="bad")
    assert list_campaigns(lake).to_pylist()[0]["n_candidates"] == 0
    assert campaign_row(lake, "early")["n_candidates"] == 0
    assert listed(tmp_path, "early")["candidates"] == "0"
