"""``csp models verify``: the model-folder check a campaign makes, run on every folder up front.

Each folder configured as a campaign model (``CSP_DFT_MODEL``, ``CSP_EXP_MODEL``, ``CSP_PU_MODEL``) is
opened exactly as :class:`csp.infer.Scorer` opens it for that role (:class:`csp.infer.OnnxModel`, which
runs :func:`csp.model_check.check_model_folder` and loads the ONNX file); other folders under the models
directory are checked without a role. The training element counts are summarised per folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flows.settings import Settings


def _roles(settings: Settings) -> dict[Path, str]:
    return {
        settings.models_dir / settings.dft_model: "dft",
        settings.models_dir / settings.exp_model: "exp",
        settings.models_dir / settings.pu_model: "pu",
    }


def verify_models(settings: Settings, ok: Callable[[str], None], bad: Callable[[str], None]) -> bool:
    """Check every model folder; report one line per folder through ``ok``/``bad``; True if all pass."""
    from csp.errors import ModelError
    from csp.infer import OnnxModel

    roles = _roles(settings)
    folders = sorted(set(roles) | {p for p in settings.models_dir.glob("*") if p.is_dir()})
    all_ok = True
    for folder in folders:
        role = roles.get(folder)
        label = f"{folder.name} ({role})" if role else folder.name
        try:
            model = OnnxModel(folder, threads=1, role=role)
        except ModelError as exc:
            all_ok = False
            bad(f"BAD {label}: {exc}")
            continue
        if model.training_counts is None:
            ok(f"ok  {label}: sha256 {model.meta['sha256'][:12]}; records no training element counts")
        else:
            seen = sum(1 for n in model.training_counts.values() if n > 0)
            ok(f"ok  {label}: sha256 {model.meta['sha256'][:12]}; {seen} elements with training rows")
    if not folders:
        all_ok = False
        bad(f"BAD {settings.models_dir}: no model folders; set CSP_MODELS_DIR.")
    return all_ok
