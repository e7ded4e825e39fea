"""A registry per process, holding the client's process and platform metrics too."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector


def for_process() -> CollectorRegistry:
    """A registry with CPU, memory and file descriptors of this process, and its Python."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry
