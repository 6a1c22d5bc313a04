"""The one place the product asks what time it is.

On AWS this is wall time. The local stack points it at its virtual clock, so that handlers, the
state machine and scheduled payments all share one notion of now.
"""

from collections.abc import Callable
from datetime import UTC, datetime


def _wall_clock() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _wall_clock


def utcnow() -> datetime:
    return _source()


def use_clock(source: Callable[[], datetime] | None) -> None:
    """Replace the time source (None restores wall time)."""
    global _source  # noqa: PLW0603 - the one process-wide seam, set by the local stack
    _source = source or _wall_clock
