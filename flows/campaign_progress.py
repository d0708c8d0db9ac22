"""How a running campaign shows its progress: a bar with an ETA on a terminal, log lines otherwise.

The total is what will actually run (the search stops after the last family: MgO in cubic has 83 families
whatever ``--outer-steps`` says). The ETA is measured, never guessed: the first family a run scores carries
the run's start-up (the models' first inferences, the symmetry-detection workers, the lake's first writes;
5x a later family's time in a 10 x 300 MgO run), so it is timed but left out of the rate, and the ETA reads
``estimating...`` until a second family is scored. Then one line gives the estimated run time (from the
families this run scored after its first: on a resume, those replayed from the lake take no time and do not
count; the lines say how many structures were scored now and how many replayed); off a terminal a progress
line is written every :data:`LOG_EVERY_S` seconds (and at the end), so a redirected run is never silent for
minutes::

    campaign flowtest-mgo: family 3/3, best FV 0.0365, 36 structures scored, ETA 0 s, elapsed 3 s

With refinement on (the default), the search's ETA says that refinement follows (``ETA 4 s, then refinement of up
to 32 structures``), and refinement, which takes as long as the search or longer, has its own lines: one when it
starts, then its progress with an ETA measured from the relaxations finished so far::

    campaign c: search done; refining 32 structures with chgnet-0.3.0 (timed once the first is relaxed)
    campaign c: refining 12/32, ETA 40 s, elapsed 1 min

The CLI prints these lines (stdout not a terminal); the Prefect campaign flow sends the same lines to its
run logger (``log=``), so ``prefect deployment run ... --watch`` and the UI's logs show them. Ctrl-C and
SIGTERM end with a one-line hint to resume.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from csp.search.budget import duration, eta_seconds
from flows.campaigns import CampaignOutcome, CampaignParameters

LOG_EVERY_S = 10.0
#: an outer step faster than this was replayed from the lake (a resume), not scored
REPLAYED_S = 0.05


class ProgressReporter:
    """Receives the search's progress dicts; writes an estimate, an ETA and (off a terminal) progress lines.

    Args:
        console: where lines are printed (ignored when ``log`` is given).
        label: the start of every line, e.g. ``"campaign gaas1"``.
        tty: a terminal shows a bar (``on_update``) instead of progress lines.
        on_update: called with ``total``, ``completed`` and ``info`` on every outer step (the bar).
        log: receives each line instead of ``console`` (e.g. a Prefect run logger's ``info``).
        refine_n: the structures refinement will relax after the search (0: none); the search's ETA says so.
    """

    def __init__(
        self,
        console: Console | None,
        label: str,
        *,
        tty: bool,
        on_update: Callable[..., None] | None = None,
        log: Callable[[str], Any] | None = None,
        refine_n: int = 0,
    ):
        if log is None and console is None:
            raise ValueError("A progress reporter needs a console or a log function.")
        self.say: Callable[[str], Any] = log or (lambda text: console.print(text, highlight=False))
        self.label = label
        self.tty = tty
        self.on_update = on_update
        self.start = self.last = time.monotonic()
        self.last_log = self.start
        #: the first family this run scored: its seconds (start-up included) and structures; not in the rate
        self.first: tuple[float, int] | None = None
        #: the families scored after it and their seconds: the rate the ETA is made from
        self.scored_steps = 0
        self.scored_s = 0.0
        self.scored_rows = 0
        self.estimated = False
        self.total: int | None = None
        self.refine_n = refine_n
        self.refine_start: float | None = None
        self.then = f", then refinement of up to {refine_n} structures" if refine_n else ""

    def eta(self, done: int) -> float | None:
        """Seconds left at the rate of the families timed after the first; None until one is."""
        if self.total is None:
            return None
        if done >= self.total:
            return 0.0
        return eta_seconds(self.scored_steps, self.scored_steps + (self.total - done), self.scored_s)

    def refining(self, p: dict[str, Any]) -> None:
        """A progress dict of refinement (or gap probes): a line when it starts, then its progress."""
        now = time.monotonic()
        done, total = int(p["done"]), int(p["total"])
        what = "refining" if p["phase"] == "refine" else "single points (gap probes) of"
        if self.refine_start is None or done == 0:
            self.refine_start = self.last_log = now
            self.say(
                f"{self.label}: search done; {what} {total} structures with {p['potential']} (timed once the "
                "first is finished)"
            )
            return
        elapsed = now - self.refine_start
        eta = elapsed / done * (total - done)
        info = f"{'refining' if p['phase'] == 'refine' else 'probing'} {done}/{total}, ETA {duration(eta)}"
        if self.on_update is not None:
            self.on_update(total=total, completed=done, info=info)
        if not self.tty and (now - self.last_log >= LOG_EVERY_S or done == total):
            self.last_log = now
            self.say(f"{self.label}: {info}, elapsed {duration(now - self.start)}")

    def __call__(self, p: dict[str, Any]) -> None:
        if p.get("phase") in ("refine", "probe"):
            self.refining(p)
            return
        now = time.monotonic()
        step_s, self.last = now - self.last, now
        self.total = int(p.get("planned_steps") or p["outer_steps"])
        done = p["outer_step"] + 1
        # a step is timed only if this run scored rows in it: one replayed from an earlier run (a resume)
        # takes no scoring time and would make the estimate too short (dicts without scored_now: by its time)
        scored = int(p.get("scored_now", p["inner_evaluations"]))
        replayed = int(p.get("replayed", 0))
        fresh, self.scored_rows = scored - self.scored_rows, scored
        timed = fresh > 0 if "scored_now" in p else step_s > REPLAYED_S
        if timed and self.first is None:
            self.first = (step_s, fresh)
        elif timed:
            self.scored_steps += 1
            self.scored_s += step_s
        eta = self.eta(done)
        if not self.estimated and self.scored_steps and self.first and self.total > done:
            self.estimated = True
            before = f", {replayed} replayed from an earlier run" if replayed else ""
            self.say(
                f"{self.label}: {self.total} families to try (the first took {duration(self.first[0])} for "
                f"{self.first[1]} structures, start-up included; the next {duration(step_s)} for {fresh}"
                f"{before}); estimated time left {'for the search ' if self.refine_n else ''}"
                f"{duration(eta)}{self.then}"
            )
        counts = f"{scored} structures scored" + (f" now, {replayed} replayed" if replayed else "")
        shown = "estimating..." if eta is None else duration(eta)
        info = f"best FV {p['best_fitness']:.4f}, {counts}, ETA {shown}{self.then}"
        if self.on_update is not None:
            self.on_update(total=self.total, completed=done, info=info)
        if not self.tty and (now - self.last_log >= LOG_EVERY_S or done == self.total):
            self.last_log = now
            self.say(
                f"{self.label}: family {done}/{self.total}, {info}, elapsed {duration(now - self.start)}"
            )


def listing_reporter(
    say: Callable[[str], Any], label: str, every_s: float = LOG_EVERY_S
) -> Callable[..., None]:
    """Progress lines of the family listing before a campaign starts
    (:func:`csp.search.families.plan_families`'s ``report``): one every ``every_s`` seconds, none for a
    listing shorter than that, e.g.
    ``campaign h1: listing symmetry families: Z 31/40, space group 47, 20,274 families so far, 21 s`` and
    ``campaign h1: counting the families above the atom cap: Z 41/64, space group 150, 2 min``."""
    last = {"t": 0.0}

    def report(info: dict[str, Any]) -> None:
        if info["elapsed_s"] - last["t"] < every_s:
            return
        last["t"] = info["elapsed_s"]
        where = f"Z {info['formula_units']}/{info['z_max']}, space group {info['spacegroup']}"
        if info["families"] is None:
            say(f"{label}: counting the families above the atom cap: {where}, {duration(info['elapsed_s'])}")
        else:
            found = f"{info['families']:,} families so far"
            say(f"{label}: listing symmetry families: {where}, {found}, {duration(info['elapsed_s'])}")

    return report


def run_with_progress(
    params: dict[str, Any] | CampaignParameters,
    campaign_id: str | None,
    export_dir: Path | None,
    *,
    console: Console,
    fail: Callable[[str, int], None],
    force: bool = False,
) -> CampaignOutcome:
    """Run (or resume) a campaign with progress on ``console``; ``fail(message, code)`` ends the command.

    The id and ``export_dir`` are checked first (:func:`flows.campaigns.check_targets`), then the request
    (:func:`flows.campaigns.prepare`, models opened once, families listed with a line every
    :data:`LOG_EVERY_S` seconds: :func:`listing_reporter`), then :meth:`flows.campaigns.Campaign.run`.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows.campaigns import CampaignError, check_targets, new_campaign_id, prepare

    composition = params.composition if isinstance(params, CampaignParameters) else params.get("composition")
    campaign_id = campaign_id or new_campaign_id(str(composition or ""))
    label = f"campaign {campaign_id}"
    tty = console.is_terminal and sys.stdout.isatty()
    try:
        check_targets(campaign_id, export_dir)
        listing = listing_reporter(lambda text: console.print(text, highlight=False), label)
        campaign = prepare(params, campaign_id=campaign_id, force=force, report=listing)
        config = campaign.params.search_config()  # as it will run: rs-relax turns refinement on
        refine_n = config.refine_top_n if config.refine else 0
        if not tty:
            reporter = ProgressReporter(console, label, tty=False, refine_n=refine_n)
            return campaign.run(reporter, export_dir=export_dir)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(label, total=campaign.params.outer_steps, info="")
            reporter = ProgressReporter(
                console, label, tty=True, on_update=lambda **kw: bar.update(task, **kw), refine_n=refine_n
            )
            return campaign.run(reporter, export_dir=export_dir)
    except CampaignError as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (storage.campaign_state.Terminated)
        fail(f"{label} interrupted; resume it with: csp campaign resume {campaign_id}", 130)
