"""Progress on a terminal: one status line on standard error for work that takes more than about a second.

One mechanism for every long command: the CLI opens a :func:`reporter` (a no-op unless standard error is a
terminal), and code deep in a stage reports through :func:`report` without being passed anything, e.g. the solver
layer with the best plan, the bound, the gap and the time so far, the simulator with the requests so far. A
command made of many steps (a sweep's points, a comparison's baselines, a benchmark's instances) names the step
with :func:`stage`, shown before what the work inside it reports. The line appears only after ``delay`` seconds,
is redrawn at most every ``interval`` seconds, and is cleared when the work ends, so that quick commands and
redirected output are untouched. Reports may come from another thread (a solver's log watcher).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO


class Reporter:
    """Draws a status line on ``stream`` when it is a terminal (or when ``force``)."""

    def __init__(self, stream: TextIO, delay: float = 1.0, interval: float = 0.25, force: bool = False) -> None:
        self.stream = stream
        self.enabled = force or bool(getattr(stream, "isatty", lambda: False)())
        self.delay = delay
        self.interval = interval
        self.start = time.monotonic()
        self._last = 0.0
        self._width = 0
        self._lock = threading.Lock()
        self.prefix = ""
        """The step a long command is at (:func:`stage`), shown before what the work inside it reports."""

    def update(self, text: str, now_or_never: bool = False) -> None:
        """Show ``text`` (elapsed time prefixed), if enabled, past the delay and not redrawn too recently (with
        ``now_or_never``, past the delay whatever the last redraw: a new stage is always drawn)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay or (now - self._last < self.interval and not now_or_never):
            return
        with self._lock:
            self._last = now
            shown = f"{self.prefix}  {text}" if self.prefix and text else self.prefix or text
            line = f"[{now - self.start:6.1f} s] {shown}"
            self.stream.write("\r" + line.ljust(self._width))
            self.stream.flush()
            self._width = len(line)

    def stage(self, text: str) -> None:
        """Name the step the work is at (:func:`stage`) and draw it now, past the delay."""
        with self._lock:
            self.prefix = text
        self.update("", now_or_never=True)

    def clear(self) -> None:
        """Erase the line (when one was drawn)."""
        with self._lock:
            if self.enabled and self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
                self._width = 0


_CURRENT: list[Reporter] = []


@contextlib.contextmanager
def reporter(stream: TextIO | None = None, force: bool = False, delay: float = 1.0,
             interval: float = 0.25) -> Iterator[Reporter]:
    """Make a reporter the current one for the duration (the CLI does, around a command)."""
    rep = Reporter(stream or sys.stderr, delay=delay, interval=interval, force=force)
    _CURRENT.append(rep)
    try:
        yield rep
    finally:
        _CURRENT.remove(rep)
        rep.clear()


def active() -> bool:
    """True inside :func:`reporter`: worth starting a watcher that would report."""
    return bool(_CURRENT)


def report(text: str) -> None:
    """Tell the current reporter, if any (a no-op outside :func:`reporter`, e.g. in library use)."""
    if _CURRENT:
        _CURRENT[-1].update(text)


def stage(text: str) -> None:
    """Name the step a long command is at (``sweep: 3 of 20 points``, ``compare: baseline 2 of 5``): shown at once
    (past the delay) and before every later report until the next stage, so that a solve inside a step says both.
    A no-op outside :func:`reporter`."""
    if _CURRENT:
        _CURRENT[-1].stage(text)


def done() -> None:
    """Clear the current reporter's line (a stage ends; its output may follow on the same terminal)."""
    if _CURRENT:
        _CURRENT[-1].clear()


def solver_line(name: str, elapsed_s: float, best: float | None, bound: float | None) -> str:
    """The solver's status line: best plan, bound and gap so far."""
    parts = [f"{name} solving {elapsed_s:.1f} s"]
    if best is not None:
        parts.append(f"best plan {best:,.2f} USD/h" if bound is not None else f"start {best:,.2f} USD/h")
    if bound is not None:
        parts.append(f"bound {bound:,.2f}")
    if best is not None and bound is not None and best > 0:
        parts.append(f"gap {max(0.0, best - bound) / max(abs(best), 1.0):.2%}")
    return "  ".join(parts)
