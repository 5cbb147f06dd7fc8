"""Counters, without a metrics library: the core counts, an adapter decides where the counts go.

The core calls :func:`count`; by default nothing happens. An adapter that has a metrics backend sends the
counts there once, at import (the AWS functions send them to Powertools Metrics, which writes CloudWatch EMF)::

    telemetry.use(lambda name, value: metrics.add_metric(name=name, unit=MetricUnit.Count, value=value))
"""

from __future__ import annotations

from collections.abc import Callable

Sink = Callable[[str, int], None]

_sink: Sink | None = None


def use(sink: Sink | None) -> None:
    """Send every count to ``sink`` from now on (None: count nothing again)."""
    global _sink  # noqa: PLW0603 - one process-wide hook, set once by the entry point
    _sink = sink


def count(name: str, value: int = 1) -> None:
    """Add ``value`` to the counter ``name`` (a zero is not sent)."""
    if value and _sink is not None:
        _sink(name, value)
