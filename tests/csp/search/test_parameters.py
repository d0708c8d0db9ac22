"""Campaign parameters refuse what the machine or the search cannot do before any search time is spent."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from csp.search.parameters import SearchParameters


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_refine_device_this_machine_lacks_is_refused_up_front():
    with pytest.raises(ValidationError, match="cuda is not available on this machine"):
        SearchParameters(refine_device="cuda")
    with pytest.raises(ValidationError, match="not available"):
        SearchParameters(gap_probes=3, refine=False, refine_device="cuda:1")
    # no potential runs at all: the device is never used, so nothing to refuse
    assert SearchParameters(refine=False, gap_probes=0, refine_device="cuda").refine_device == "cuda"


def test_a_refine_device_that_is_no_torch_device_is_refused():
    with pytest.raises(ValidationError, match="cpu or cuda"):
        SearchParameters(refine_device="gpu")
    assert SearchParameters(refine_device="cpu").refine_device == "cpu"


def test_max_atoms_lifts_the_per_formula_check_too():
    from flows.campaigns import CampaignError, CampaignParameters, check, validate

    big = {"composition": "Mg25O25", "outer_steps": 2, "inner_steps": 4, "refine": False, "gap_probes": 0}
    with pytest.raises(CampaignError, match="40"):
        validate(CampaignParameters(**big))
    assert validate(CampaignParameters(**big, max_atoms=60)).max_atoms == 60
    # and so does the check of the model folders a campaign makes before it touches the lake
    assert check(CampaignParameters(**big, max_atoms=60)).max_atoms == 60
