"""Campaign ids: fresh ones for the CLI, deterministic ones for a deployment's scheduled runs."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any


def slug(text: str, limit: int = 40) -> str:
    """Lowercase letters, digits and dashes (valid as an artifact key and a lake partition)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or "x"


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]


def formula_stem(composition: str) -> str:
    """The ASCII letters and digits of a formula (at most 24), for an id: whatever the formula holds (a
    full-width letter, a look-alike), an id made from it is valid, so a bad formula is blamed by the
    formula's own check, never by the id's."""
    return "".join(ch for ch in str(composition) if ch.isascii() and ch.isalnum())[:24]


def new_campaign_id(composition: str) -> str:
    """A fresh id: the formula's ASCII letters and digits (:func:`formula_stem`), the local time and six
    random hex digits."""
    safe = formula_stem(composition) or "campaign"
    return f"{safe}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def derived_campaign_id(deployment: str, scheduled: datetime, params: dict[str, Any]) -> str:
    """Deterministic id of a deployment's run in one scheduled slot (UTC minute) with these parameters."""
    stamp = scheduled.astimezone(UTC).strftime("%Y%m%dT%H%MZ")
    composition = formula_stem(str(params.get("composition", "")))
    return f"{slug(deployment, 24)}-{composition}-{stamp}-{params_hash(params)}"
