"""Everything the routes share, built once at start-up and kept on app.state."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from cast_api.metrics import ApiMetrics
from cast_api.service import CastService
from cast_core.clock import Clock
from cast_core.settings import Settings
from cast_core.signed_fetch import CatalystValidator


@dataclass
class AppState:
    settings: Settings
    service: CastService
    clock: Clock
    metrics: ApiMetrics
    catalyst: CatalystValidator | None


async def app_state(request: Request) -> AppState:
    # async: a plain def dependency would run in the thread pool on every request.
    state: AppState = request.app.state.cast
    return state
