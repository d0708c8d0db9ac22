"""The custom-run form of the ``campaign`` deployment: composition first, required and not pre-filled
(issue 23); read from the flow's parameter schema and ``prefect.yaml``, no server needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("prefect")

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"


def test_composition_is_the_first_and_required_field_of_the_form():
    from prefect.utilities.callables import parameter_schema

    from flows.deployments.campaign import campaign

    schema = parameter_schema(campaign).model_dump()
    props = schema["properties"]
    assert next(iter(props)) == "composition" and props["composition"]["position"] == 0
    assert schema["required"] == ["composition"]
    assert "default" not in props["composition"]
    assert "e.g. MgO" in props["composition"]["description"]


def test_the_campaign_deployment_does_not_prefill_a_composition():
    deployments = {d["name"]: d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]}
    campaign = deployments["campaign"]
    assert campaign["entrypoint"] == "flows/deployments/campaign.py:campaign"
    assert "composition" not in (campaign.get("parameters") or {})
    # the nightly schedules name theirs, one per schedule
    nightly = [s["parameters"]["composition"] for s in deployments["nightly"]["schedules"]]
    assert nightly == ["MgO", "GaAs", "BaZrO3"]
