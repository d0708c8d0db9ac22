"""The paper report (issue 24): Table 1, Figs. 2-4 and every miss explained, measured on the product's own
code path, written as ``report.md``, ``report.json`` and PNG figures (default ``benchmarks/results/paper/``).

The grid comes from a preset (:data:`csp.evaluation.plan.PRESETS`: ``tiny``, ``reduced``, ``full``). Every
campaign runs through :func:`flows.campaigns.run_campaign` into the lake of ``CSP_HOME`` (kept there, with
ids derived from its parameters), fanned out over ``workers`` processes of one thread each; a campaign the
lake holds completed is read back, not run again, so a stopped report resumes. The rs-relax baseline runs
after Table 1, each given the wall time of the compound's ALIGNN-CSP campaigns. With ``--device cuda`` and more
than one worker, one relaxation server process (:class:`csp.potentials.relax_server.RelaxServer`) owns the GPU
and the potential, and every worker sends its refinement there (batched with the other campaigns'); the
workers never open a CUDA context (``relax_server``: ``auto``, ``on`` or ``off``). Fig. 2 ingests the sources it
needs when the lake lacks them. Every number of ``report.md`` is read from ``report.json``
(:func:`csp.evaluation.report.render`); ``csp benchmark paper`` and the Prefect deployment ``benchmark`` are
faces of :func:`run_paper`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from csp.evaluation.plan import PARTS, Part, PresetName
from flows.settings import Settings
from flows.settings import settings as current_settings

__all__ = ["DEFAULT_OUT", "PaperParameters", "run_paper"]

PROJECT = Path(__file__).resolve().parents[1]
#: where the report goes unless ``out`` says otherwise
DEFAULT_OUT = PROJECT / "benchmarks" / "results" / "paper"


class PaperParameters(BaseModel):
    """What a person chooses for one paper report (the CLI's options and the Prefect form)."""

    model_config = ConfigDict(extra="forbid")

    preset: PresetName = Field(
        "tiny",
        description="tiny (CI, minutes), reduced (< 30 min on 2 CPU cores) or full (the paper's grid).",
    )
    parts: list[Part] | None = Field(None, description="Parts to run, repeated (default all).")
    workers: int = Field(1, ge=1, le=256, description="Campaigns run at once, one process (one thread) each.")
    device: Literal["cpu", "cuda"] = Field("cpu", description="Torch device of the potential's refinement.")
    relax_server: Literal["auto", "on", "off"] = Field(
        "auto",
        description="One relaxation server process owns the device and relaxes every campaign's structures "
        "(auto: on with --device cuda and more than one worker).",
    )
    out: Path | None = Field(
        None,
        description="Folder of the report (default benchmarks/results/paper).",
        json_schema_extra={"csp_output": "folder"},
    )

    def uses_server(self) -> bool:
        """Whether the campaigns relax through one relaxation server (``auto``: cuda and several workers)."""
        if self.relax_server == "auto":
            return self.device == "cuda" and self.workers > 1
        return self.relax_server == "on"

    def chosen_parts(self) -> list[Part]:
        """The parts to run, in the report's order."""
        return [p for p in PARTS if self.parts is None or p in self.parts]

    def folder(self) -> Path:
        """The report's folder."""
        return Path(self.out) if self.out is not None else DEFAULT_OUT

    def command(self) -> str:
        """The ``csp`` command that makes this report (what the report says made it)."""
        words = ["csp benchmark paper", f"--preset {self.preset}"]
        words += [f"--parts {p}" for p in self.parts or []]
        words += [f"--workers {self.workers}"] if self.workers != 1 else []
        words += [f"--device {self.device}"] if self.device != "cpu" else []
        words += [f"--relax-server {self.relax_server}"] if self.relax_server != "auto" else []
        if self.out is not None:
            out = Path(self.out).resolve()
            shown = out.relative_to(PROJECT) if out.is_relative_to(PROJECT) else out
            words.append(f"--out {shown}")
        return " ".join(words)


def machine() -> dict[str, Any]:
    """This machine in a report's words: CPUs, platform, Python, GPU (name and count; None without CUDA)."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpus": torch.cuda.device_count() if cuda else 0,
    }


def model_ids(settings: Settings) -> dict[str, str]:
    """``{dft, exp, pu: "<folder>:<sha256[:12]>"}`` of the configured models (each folder checked)."""
    from csp.models.check import check_model_folder

    out = {}
    for kind in ("dft", "exp", "pu"):
        folder = settings.model_dir(kind)  # type: ignore[arg-type]
        out[kind] = f"{folder.name}:{check_model_folder(folder, kind)['sha256'][:12]}"
    return out


def _run_all(
    jobs: list[dict[str, Any]], home: Path, workers: int, say: Callable[[str], None], server: Any = None
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Each distinct campaign of ``jobs`` run (or read back) once; ``(outputs by id, failures)``. With
    ``server`` (a :class:`csp.potentials.relax_server.ServerAddress`) every campaign relaxes through it."""
    from csp.potentials.relax_server import configured, connect
    from flows.paper_jobs import one_thread, run_job

    unique = {j["campaign_id"]: j for j in reversed(jobs)}  # the first job of an id wins
    order = sorted(unique.values(), key=lambda j: -j["params"]["outer_steps"] * j["params"]["inner_steps"])
    outputs: dict[str, Any] = {}
    failed: list[dict[str, str]] = []

    def done(cid: str, out: Any = None, error: BaseException | None = None) -> None:
        if error is not None:
            failed.append({"campaign_id": cid, "error": f"{type(error).__name__}: {error}"})
            say(f"FAILED {cid}: {type(error).__name__}: {error}")
        else:
            outputs[cid] = out
            say(f"{len(outputs) + len(failed)}/{len(order)} {cid} {out['campaign']['elapsed_s'] or 0:.0f} s")

    if workers == 1:
        before = configured()
        connect(server or before)
        try:
            for job in order:
                try:
                    done(job["campaign_id"], run_job(job, str(home), 1))
                except Exception as exc:  # noqa: BLE001 - reported per campaign; the report goes on without it
                    done(job["campaign_id"], error=exc)
        finally:
            connect(before)
        return outputs, failed
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    spawn = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=spawn, initializer=one_thread, initargs=(server,)) as pool:
        futures = {pool.submit(run_job, job, str(home), 1): job["campaign_id"] for job in order}
        for future in as_completed(futures):
            try:
                done(futures[future], future.result())
            except Exception as exc:  # noqa: BLE001 - as above
                done(futures[future], error=exc)
    return outputs, failed


def _baseline_jobs(plan: Any, entries: list[dict[str, Any]], jobs: list[dict[str, Any]], outputs: dict[str, Any],
                   device: str) -> list[dict[str, Any]]:  # fmt: skip
    """One rs-relax job per compound, strategy and seed of Table 1, given the mean wall time of that
    compound's ALIGNN-CSP campaigns (over alphas) and sized by their seconds per relaxation."""
    from csp.evaluation.plan import baseline_job, baseline_structures

    by_formula = {e["formula"]: e for e in entries}
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for job in jobs:
        out = outputs.get(job["campaign_id"])
        if job["part"] == "table1" and job["model"] == "exp" and out is not None:
            groups.setdefault((job["formula"], job["strategy"], job["seed"]), []).append(out["campaign"])
    made = []
    for (formula, strategy, seed), campaigns in sorted(groups.items()):
        campaigns = list({c["campaign_id"]: c for c in campaigns}.values())
        target = sum(c["elapsed_s"] or 0.0 for c in campaigns) / len(campaigns)
        refine_s = sum(c["refine_s"] or 0.0 for c in campaigns)
        relaxed = sum(c["relaxed"] or 0 for c in campaigns)
        n = baseline_structures(target, refine_s, relaxed)
        job = baseline_job(plan, by_formula[formula], strategy, seed, n, device)
        made.append({**job, "target_seconds": target})
    return made


def _run_baseline(plan: Any, entries: list[dict[str, Any]], first: list[dict[str, Any]], params: PaperParameters,
                  home: Path, say: Callable[[str], None],
                  server: Any = None) -> tuple[list[dict[str, Any]], dict[str, Any], list]:  # fmt: skip
    """The baseline jobs run; one that missed the equal wall time by more than the tolerance runs again,
    rescaled by its own seconds per structure, up to ``plan.baseline_rescales`` times (earlier runs stay in
    the lake as ``baseline-calibration``)."""
    from csp.evaluation.plan import baseline_job, baseline_structures, needs_rescale

    by_formula = {e["formula"]: e for e in entries}
    outputs, failed = _run_all(first, home, params.workers, say, server)
    done, current = [], first
    for _ in range(plan.baseline_rescales):
        again, kept = [], []
        for job in current:
            out = outputs.get(job["campaign_id"])
            spent = out["campaign"]["elapsed_s"] if out else None
            retry = None
            if out is not None and needs_rescale(job["target_seconds"], spent, plan.baseline_time_tolerance):
                n = baseline_structures(job["target_seconds"], spent, job["structures"])
                retry = baseline_job(
                    plan, by_formula[job["formula"]], job["strategy"], job["seed"], n, params.device
                )
            tried = {j["campaign_id"] for j in [*done, *current]}
            if retry is not None and retry["campaign_id"] not in tried:
                again.append({**retry, "target_seconds": job["target_seconds"]})
                done.append({**job, "part": "baseline-calibration"})
            else:
                kept.append(job)
        if not again:
            break
        more, more_failed = _run_all(again, home, params.workers, say, server)
        outputs.update(more)
        failed += more_failed
        done += kept
        current = again
    return done + current, outputs, failed


@contextmanager
def _relax_server(
    params: PaperParameters, jobs: list[dict[str, Any]], say: Callable[[str], None]
) -> Iterator[Any]:
    """The relaxation server's address while the campaigns run (None when ``params`` uses none); the server
    process (the potential of the first job, on ``params.device``) stops when the block ends, also on an
    exception or Ctrl-C.

    Raises:
        csp.potentials.relax_server.RelaxServerError: the server did not start (e.g. no GPU).
    """
    if not params.uses_server() or not jobs:
        yield None
        return
    from csp.potentials.relax_server import RelaxServer

    potential = jobs[0]["params"].get("refine_potential", "chgnet")
    server = RelaxServer(potential, params.device)
    with server as address:
        say(f"relaxation server: {potential} on {params.device}, one process for {params.workers} workers")
        yield address
    stats = server.stats or {}
    say(
        f"relaxation server stopped: {stats.get('requests', '?')} requests, {stats.get('structures', '?')} structures"
    )


def run_paper(
    params: PaperParameters, settings: Settings | None = None, say: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the report's campaigns (resuming what the lake holds), assemble ``report.json``, draw the
    figures and write ``report.md`` in :meth:`PaperParameters.folder`; returns the report's JSON.

    Raises:
        ValueError: no data mirror configured, or a plan naming a compound outside Table 1.
    """
    from csp.evaluation.plan import PRESETS, fig3_jobs, fig4_jobs, table1_jobs
    from csp.evaluation.report import write_report
    from csp.evaluation.summary import assemble
    from csp.evaluation.table1 import Reference, load_entries

    settings = settings or current_settings()
    say = say or (lambda line: None)
    started, clock = datetime.now(UTC), time.perf_counter()
    plan = PRESETS[params.preset]
    parts = params.chosen_parts()
    mirror = settings.require_mirror()
    entries = load_entries(mirror)
    refs = {e["formula"]: Reference.of(e, mirror) for e in entries}
    jobs: list[dict[str, Any]] = []
    if "table1" in parts:
        jobs += table1_jobs(plan, entries, params.device)
    if "fig4" in parts:
        jobs += fig4_jobs(plan, entries, params.device)
    if "fig3" in parts:
        jobs += fig3_jobs(plan, params.device)
    home = settings.home
    parts_s: dict[str, float] = {}
    with _relax_server(params, jobs, say) as server:
        t = time.perf_counter()
        outputs, failed = _run_all(jobs, home, params.workers, say, server)
        parts_s["campaigns"] = time.perf_counter() - t
        if "table1" in parts and plan.baseline:
            t = time.perf_counter()
            first = _baseline_jobs(plan, entries, jobs, outputs, params.device)
            baseline, more, more_failed = _run_baseline(plan, entries, first, params, home, say, server)
            jobs += baseline
            outputs.update(more)
            failed += more_failed
            parts_s["baseline"] = time.perf_counter() - t
    fig2 = None
    if "fig2" in parts:
        from flows.paper_jobs import fig2_data

        t = time.perf_counter()
        say("fig2: test splits scored")
        fig2 = fig2_data(settings, list(plan.fig2_sources), plan.fig2_max_per_source, plan.fig2_link_sources)
        parts_s["fig2"] = time.perf_counter() - t
    potentials = sorted({o["campaign"]["potential"] for o in outputs.values() if o["campaign"]["potential"]})
    meta = {
        "command": params.command(),
        "preset": params.preset,
        "parts": list(parts),
        "workers": params.workers,
        "device": params.device,
        "relax_server": params.uses_server(),
        "machine": machine(),
        "models": {**model_ids(settings), "potential": ", ".join(potentials) or None},
        "lake": str(home),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_s": time.perf_counter() - clock,
        "parts_s": parts_s,
        "failed": failed,
    }
    data = assemble(plan, refs, jobs, outputs, fig2=fig2, meta=meta)
    folder = params.folder()
    write_report(data, folder)
    say(f"wrote {folder / 'report.md'} in {data['wall_s'] / 60:.1f} min")
    return data


def load_report(folder: Path) -> dict[str, Any]:
    """The ``report.json`` of a report folder."""
    return json.loads((Path(folder) / "report.json").read_text())
