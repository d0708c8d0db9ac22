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


def test_every_deployment_points_at_a_real_flow_that_takes_its_parameters():
    import inspect

    from prefect import Flow
    from prefect.flows import load_flow_from_entrypoint

    deployments = {d["name"]: d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]}
    for name, deployment in deployments.items():
        flow = load_flow_from_entrypoint(str(PREFECT_YAML.parent / deployment["entrypoint"]))
        assert isinstance(flow, Flow), name
        accepted = set(inspect.signature(flow.fn).parameters)
        given = set(deployment.get("parameters") or {})
        for schedule in deployment.get("schedules") or ():
            given |= set(schedule.get("parameters") or {})
        assert given <= accepted, (name, given - accepted)
    # the active rounds (issue 20): its form is the `csp learn run` options, its defaults valid
    active = deployments["active"]
    assert active["entrypoint"] == "flows/deployments/active.py:active"
    from flows.active import ActiveParameters

    flow = load_flow_from_entrypoint(str(PREFECT_YAML.parent / active["entrypoint"]))
    assert flow.name == "active"
    assert set(inspect.signature(flow.fn).parameters) == set(ActiveParameters.model_fields)
    assert ActiveParameters(**active["parameters"]).workers == active["parameters"]["workers"]
