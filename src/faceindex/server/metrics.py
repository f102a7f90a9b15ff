"""Prometheus metrics: one registry per app (no process globals), served at /metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "faceindex_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "faceindex_http_request_seconds",
            "HTTP request latency by route template",
            ["route"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.searches = Counter(
            "faceindex_searches", "Searches by outcome", ["outcome"], registry=self.registry
        )
        self.in_flight = Gauge(
            "faceindex_engine_calls_in_flight",
            "Engine calls admitted and not yet answered",
            registry=self.registry,
        )
        self.gallery = Gauge(
            "faceindex_gallery_faces", "Faces in the vector index", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.requests.labels(template, request.method, str(response.status_code)).inc()
        self.latency.labels(template).observe(time.perf_counter() - started)
        return response
