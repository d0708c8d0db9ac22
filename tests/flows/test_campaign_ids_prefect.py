"""Through Prefect, an id belongs to one set of parameters too (issue 13, fault 2)."""

from __future__ import annotations

import pytest

pytest.importorskip("prefect")

from tests.flows.test_deployments import TINY


@pytest.mark.slow
def test_a_completed_id_with_another_composition_fails(prefect_api, csp_home):
    from flows.deployments.campaign import campaign
    from storage.lake import Lake

    first = campaign(**TINY, campaign_id="pf-x", return_state=True)
    assert first.is_completed(), first.message
    lake = Lake(csp_home)
    rows = lake.query("SELECT count(*) FROM candidates WHERE campaign_id = 'pf-x'").column(0)[0].as_py()
    other = campaign(**{**TINY, "composition": "GaAs"}, campaign_id="pf-x", return_state=True)
    assert other.is_failed()
    with pytest.raises(Exception, match=r'composition="MgO"'):
        other.result()
    seed = campaign(**{**TINY, "seed": 7}, campaign_id="pf-x", return_state=True)
    assert seed.is_failed()
    assert (
        lake.query("SELECT count(*) FROM candidates WHERE campaign_id = 'pf-x'").column(0)[0].as_py() == rows
    )
    status = lake.query("SELECT status, composition FROM campaigns WHERE campaign_id = 'pf-x'").to_pylist()
    assert status == [{"status": "completed", "composition": "MgO"}]
