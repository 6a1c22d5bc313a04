"""One virtual clock for a whole local run.

Every actor of a run (the driver that posts documents and payments, and one thread per Step
Functions execution) is counted. An actor that waits (a Wait state, a task token with a timeout, a
retry back-off, the driver's next scheduled delivery) tells the clock. When no actor is running,
nothing can happen before the earliest wait ends, so the clock jumps straight to it: waits cost no
wall time, and events scheduled at virtual times interleave with the workflows exactly as they
would in real time.
"""

import heapq
import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


class ClockStalledError(RuntimeError):
    """Every actor is waiting for an event that nothing can set any more."""


@dataclass(eq=False)
class _Waiter:
    deadline: datetime | None
    event: threading.Event | None
    wake: threading.Event = field(default_factory=threading.Event)
    woken: bool = False
    by_event: bool = False


class VirtualClock:
    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the virtual clock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()
        self._active = 0
        self._order = itertools.count()
        self._deadlines: list[tuple[datetime, int, _Waiter]] = []
        self._event_waiters: set[_Waiter] = set()
        self.stalled: ClockStalledError | None = None

    def now(self) -> datetime:
        with self._lock:
            return self._now

    # Actors.

    def actor_started(self) -> None:
        """Called by whoever starts an actor, before it runs: the count never dips to zero early."""
        with self._lock:
            self._active += 1

    def actor_finished(self) -> None:
        with self._lock:
            self._active -= 1
            self._advance_if_idle()

    # Waiting.

    def sleep(self, seconds: float) -> None:
        self.wait(seconds, None)

    def sleep_until(self, instant: datetime) -> None:
        self.wait((instant - self.now()).total_seconds(), None)

    def wait(self, seconds: float | None, event: threading.Event | None) -> bool:
        """Block the calling actor for `seconds` of virtual time or until `event` is set.

        Returns True when the event was set, as threading.Event.wait does.
        """
        if event is None and seconds is None:
            raise ValueError("a wait needs a timeout, an event, or both")
        with self._lock:
            if event is not None and event.is_set():
                return True
            if seconds is not None and seconds <= 0 and event is None:
                return False
            deadline = None if seconds is None else self._now + timedelta(seconds=max(seconds, 0))
            waiter = _Waiter(deadline=deadline, event=event)
            if deadline is not None:
                heapq.heappush(self._deadlines, (deadline, next(self._order), waiter))
            if event is not None:
                self._event_waiters.add(waiter)
            self._active -= 1
            self._advance_if_idle()
        waiter.wake.wait()
        if self.stalled is not None and not waiter.by_event and waiter.deadline is None:
            raise self.stalled
        return waiter.by_event

    def _wake(self, waiter: _Waiter, *, by_event: bool) -> None:
        waiter.woken = True
        waiter.by_event = by_event
        self._event_waiters.discard(waiter)
        self._active += 1
        waiter.wake.set()

    def _advance_if_idle(self) -> None:
        """With the lock held: if nobody runs, wake whoever can go on next."""
        if self._active > 0:
            return

        # An event set by an actor that has since gone to sleep wakes its waiter at once.
        signalled = [w for w in self._event_waiters if w.event is not None and w.event.is_set()]
        if signalled:
            for waiter in signalled:
                self._wake(waiter, by_event=True)
            return

        while self._deadlines and self._deadlines[0][2].woken:
            heapq.heappop(self._deadlines)
        if not self._deadlines:
            if self._event_waiters:
                self.stalled = ClockStalledError(
                    f"{len(self._event_waiters)} actor(s) wait for events nothing can set"
                )
                for waiter in list(self._event_waiters):
                    self._wake(waiter, by_event=False)
            return

        deadline = self._deadlines[0][0]
        self._now = max(self._now, deadline)
        while self._deadlines and self._deadlines[0][0] <= deadline:
            _, _, waiter = heapq.heappop(self._deadlines)
            if not waiter.woken:
                self._wake(waiter, by_event=False)


class RealClock:
    """The clock outside simulations: wall time."""

    def now(self) -> datetime:
        return datetime.now(UTC)
