"""Prometheus metrics of the API, on a registry per app so tests stay independent."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

REJECTION_REASONS = {
    "Invalid Auth Chain": "invalid_chain",
    "Auth chain exceeds maximum length": "chain_too_long",
    "Invalid chain format": "invalid_chain_format",
    "Invalid chain timestamp": "invalid_timestamp",
    "Expired signature": "expired_signature",
    "Signature timestamp is too far in the future": "future_timestamp",
    "Invalid chain metadata": "invalid_metadata",
    "Invalid metadata content": "invalid_metadata_content",
    "Invalid signature": "invalid_signature",
    "Error connecting to catalyst": "catalyst_unavailable",
    "Catalyst": "catalyst_unavailable",
    "Invalid response from catalyst": "catalyst_unavailable",
}


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def rejection_reason(message: str) -> str:
    """A bounded label for a signed-fetch rejection message."""
    for prefix, reason in REJECTION_REASONS.items():
        if message.startswith(prefix):
            return reason
    return "other"


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cast_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cast_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.tokens = Counter(
            "cast_tokens_minted", "LiveKit tokens minted by role", ["role"], registry=self.registry
        )
        # labels() costs a lock and a tuple per call; the hot path reuses bound children.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._token_children: dict[str, Any] = {}
        self.signed_fetch_rejections = Counter(
            "cast_signed_fetch_rejections",
            "Signed-fetch requests rejected, by reason",
            ["reason"],
            registry=self.registry,
        )

    def token_minted(self, role: str) -> None:
        child = self._token_children.get(role)
        if child is None:
            child = self._token_children[role] = self.tokens.labels(role)
        child.inc()

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        # Any string can arrive as a method: keep the label set bounded.
        method = method if method in HTTP_METHODS else "OTHER"
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)
