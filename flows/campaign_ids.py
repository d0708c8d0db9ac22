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


def new_campaign_id(composition: str) -> str:
    """A fresh id: the formula's letters and digits, the local time and six random hex digits."""
    safe = "".join(ch for ch in composition if ch.isalnum())[:24] or "campaign"
    return f"{safe}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def derived_campaign_id(deployment: str, scheduled: datetime, params: dict[str, Any]) -> str:
    """Deterministic id of a deployment's run in one scheduled slot (UTC minute) with these parameters."""
    stamp = scheduled.astimezone(UTC).strftime("%Y%m%dT%H%MZ")
    composition = "".join(ch for ch in str(params.get("composition", "")) if ch.isalnum())[:24]
    return f"{slug(deployment, 24)}-{composition}-{stamp}-{params_hash(params)}"
