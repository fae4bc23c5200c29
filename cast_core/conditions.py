"""StreamLink status conditions in metav1.Condition form (Kubernetes API conventions).

`set_condition` follows cert-manager's helper: lastTransitionTime moves only when the status flips,
observedGeneration is always stamped, so rewriting an unchanged condition is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cast_core.model import format_time

READY = "Ready"
EXPIRED = "Expired"
REVOKED = "Revoked"
SYNCED = "Synced"

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"

# The order conditions are listed in when first added (kubectl describe reads top-down).
ORDER = (READY, EXPIRED, REVOKED, SYNCED)


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str = ""


def find(conditions: Iterable[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    for condition in conditions:
        if condition.get("type") == type_:
            return condition
    return None


def is_true(conditions: Iterable[Mapping[str, Any]], type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.get("status") == TRUE


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    condition: Condition,
    *,
    observed_generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """A new list with `condition` set; other conditions (ours or anyone's) are kept as they are."""
    previous = find(conditions, condition.type)
    if previous is not None and previous.get("status") == condition.status:
        since = str(previous.get("lastTransitionTime") or format_time(now))
    else:
        since = format_time(now)
    entry: dict[str, Any] = {
        "type": condition.type,
        "status": condition.status,
        "observedGeneration": observed_generation,
        "lastTransitionTime": since,
        "reason": condition.reason,
        "message": condition.message,
    }
    out = [dict(c) for c in conditions]
    for index, existing in enumerate(out):
        if existing.get("type") == condition.type:
            out[index] = entry
            return out
    out.append(entry)
    return out


def set_conditions(
    conditions: Sequence[Mapping[str, Any]],
    wanted: Iterable[Condition],
    *,
    observed_generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [dict(c) for c in conditions]
    for condition in wanted:
        out = set_condition(out, condition, observed_generation=observed_generation, now=now)
    return out
