"""The project's one settings class (environment prefix ``CSP_``); nothing happens at import.

Faces call :func:`settings` and :func:`lake` rather than building ``Settings()`` themselves: one settings
object per process (rebuilt only when a ``CSP_*`` environment variable changes, as in tests) and one
:class:`storage.lake.Lake` per lake root.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from csp.models.names import DEFAULT_MODELS, resolve_model

if TYPE_CHECKING:
    from storage.lake import Lake

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _default_home() -> Path:
    from storage.lake import default_home  # storage loads duckdb and pyarrow: only when needed

    return default_home()


class Settings(BaseSettings):
    """Where the lake, the data mirror and the models are, and how to compute."""

    model_config = SettingsConfigDict(env_prefix="CSP_", extra="forbid", validate_default=True)

    home: Path = Field(
        default_factory=_default_home,
        description="Lake root: Parquet parts under home/lake and the DuckDB catalog home/catalog.duckdb.",
    )
    data_mirror: Path | None = Field(
        default=None,
        description="Folder holding the public data files (dft/, synth/, experimental/, validation/); "
        "unset: ../shared/data beside the checkout when that folder exists.",
    )
    models_dir: Path = Field(
        default=_PACKAGE_ROOT / "onnx_models",
        description="Folder of shipped ONNX model folders (one sub-folder per model).",
    )
    dft_model: str = Field(
        default=DEFAULT_MODELS["dft"],
        description="Model folder of the DFT enthalpy model (old names resolve).",
    )
    exp_model: str = Field(
        default=DEFAULT_MODELS["exp"], description="Model folder of the experiment-calibrated model."
    )
    pu_model: str = Field(
        default=DEFAULT_MODELS["pu"], description="Model folder of the PU synthesizability ensemble."
    )
    service_lake: Path | None = Field(
        default=None,
        description="Set by the service's deployments (prefect.yaml job variables), never by hand: the lake "
        "a flow run is meant for. A run whose worker has another CSP_HOME refuses to start.",
    )
    device: Literal["cpu", "cuda"] = Field(default="cpu", description="Device for training (torch).")
    threads: int = Field(default=2, ge=1, le=256, description="Threads per onnxruntime session and DuckDB.")

    def mirror(self) -> Path | None:
        """The data mirror folder: CSP_DATA_MIRROR, else ``../shared/data`` beside the checkout if present
        (:func:`storage.readers.default_mirror`, the one place that default lives)."""
        if self.data_mirror is not None:
            return self.data_mirror.expanduser()
        from storage.readers import default_mirror

        found = default_mirror()
        return found if found.is_dir() else None

    def require_mirror(self) -> Path:
        """The data mirror folder, or a clear error saying how to set it."""
        found = self.mirror()
        if found is None:
            raise ValueError(
                "No data mirror is configured: set CSP_DATA_MIRROR to the folder of the data files."
            )
        mirror = found.resolve()
        if not mirror.is_dir():
            raise ValueError(
                f"The data mirror {mirror} is not a folder: set CSP_DATA_MIRROR to the data folder."
            )
        return mirror

    def model_dir(self, kind: Literal["dft", "exp", "pu"]) -> Path:
        """The folder of the configured ``kind`` model (earlier folder names resolve, see
        :func:`csp.models.names.resolve_model`)."""
        name = {"dft": self.dft_model, "exp": self.exp_model, "pu": self.pu_model}[kind]
        return resolve_model(self.models_dir, name)

    @property
    def exclusions_file(self) -> Path:
        """The paper's Table 1 file, whose compounds are excluded from training by default."""
        return self.require_mirror() / "validation" / "table1.json"


@lru_cache(maxsize=8)
def _settings_for(environment: tuple[tuple[str, str], ...]) -> Settings:
    return Settings()


class WrongLakeError(RuntimeError):
    """A flow run meant for one lake reached a worker that writes to another (one-line message)."""


@lru_cache(maxsize=4)
def _worker_lake_of(pid: int) -> Path | None:
    from flows.service_pids import worker_lake_of_ancestors

    return worker_lake_of_ancestors(pid)


def _worker_lake() -> Path | None:
    return _worker_lake_of(os.getpid())  # once per process (a fork is another process)


def check_service_lake(found: Settings) -> None:
    """Refuse a run whose deployment names another lake than this process's ``CSP_HOME``, or that runs under
    a Prefect worker started for another lake.

    The second check reads the environment the worker process was started with
    (:func:`flows.service_pids.worker_lake_of_ancestors`), which a run's job variables cannot change: a
    submitter who sets both ``CSP_HOME`` and ``CSP_SERVICE_LAKE`` to another folder is refused too.

    Raises:
        WrongLakeError: ``CSP_SERVICE_LAKE`` is set and is not ``CSP_HOME`` (both resolved), or an ancestor
            ``prefect worker start`` process has a ``CSP_HOME`` other than this one.
    """
    here = found.home.expanduser().resolve()
    started = _worker_lake()
    if started is not None and started != here:
        raise WrongLakeError(
            f"This run asks for the lake {here}, but its worker was started for {started}; nothing was "
            f"written. Run it from the service of {here} (`csp service up` with CSP_HOME={here})."
        )
    if found.service_lake is None:
        return
    meant = found.service_lake.expanduser().resolve()
    if meant != here:
        raise WrongLakeError(
            f"This run was deployed for the lake {meant}, but its worker writes to {here}; nothing was "
            f"written. Run it from the service of {meant} (`csp service up` with CSP_HOME={meant})."
        )


def settings() -> Settings:
    """The process's settings (built once per distinct set of ``CSP_*`` environment variables).

    Raises:
        WrongLakeError: in a flow run deployed for another lake (:func:`check_service_lake`).
    """
    found = _settings_for(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("CSP_"))))
    check_service_lake(found)
    return found


@lru_cache(maxsize=8)
def _lake_at(home: Path, init: bool) -> Lake:
    from storage.lake import Lake

    found = Lake(home)
    return found.init() if init else found


def lake(*, init: bool = False, missing_ok: bool = False) -> Lake:
    """The lake of :func:`settings` (one object per lake root).

    Writers pass ``init=True``: the lake's folders are created (once per process). Readers pass nothing: the
    lake must exist already, as :func:`storage.lake.open_read_only` rules, and nothing is created.
    ``missing_ok=True`` is for a writer that reads before it writes (the read sees an empty lake).

    Raises:
        NoLakeError: no lake at ``CSP_HOME`` (readers only): "no lake at <path>: run `csp ingest run` or set
            CSP_HOME" (the CLI prints it as its one error line, exit 1).
    """
    found = _lake_at(settings().home, init)
    return found if init or missing_ok else found.require()
