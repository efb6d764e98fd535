"""Ctrl-C and SIGTERM during a solve: stop the solver, keep the best plan found so far, leave nothing behind.

While a solve runs, :class:`Interruption` replaces the SIGINT and SIGTERM handlers by one that records the
request instead of raising ``KeyboardInterrupt`` in the middle of PuLP (which would lose the incumbent, leave
PuLP's ``*-pulp.*`` files behind and, when the signal reached pdopt alone, leave ``cbc`` running):

- CBC runs as a child process: the request is forwarded to it as SIGINT (a terminal's Ctrl-C reaches it
  directly too); CBC then stops its search and writes the best solution it has, which PuLP reads as usual.
- HiGHS runs in-process: its interrupt callback (checked throughout the MIP search) returns the request, and
  HiGHS stops with its best solution.

The solver layer then reports the solve as interrupted (``SolverReport.interrupted``); the CLI prints what there
is and exits 130. Outside a solve, Ctrl-C raises ``KeyboardInterrupt`` as usual.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any


def child_pids(pid: int | None = None) -> list[int]:
    """Process ids whose parent is ``pid`` (this process by default), read from /proc (empty where there is
    none)."""
    parent = os.getpid() if pid is None else pid
    out: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return out
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and int(fields[1]) == parent:
            out.append(int(entry.name))
    return out


class Interruption:
    """A context in which SIGINT and SIGTERM are recorded (and forwarded to child processes), not raised."""

    def __init__(self) -> None:
        self.requested = False
        self.signal: int | None = None
        self._old: dict[int, Any] = {}
        self._told: set[int] = set()
        self._done = threading.Event()
        self._watcher: threading.Thread | None = None

    def _forward(self) -> None:
        """Tell every child process to stop (SIGINT, which CBC handles by writing its best solution)."""
        for pid in child_pids():
            if pid not in self._told:
                self._told.add(pid)
                with contextlib.suppress(OSError):  # it may have ended meanwhile
                    os.kill(pid, signal.SIGINT)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.signal = signum
        self._forward()
        if self._watcher is None:  # a solver started just after the signal must be told too
            self._watcher = threading.Thread(target=self._watch, daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            self._forward()

    def __enter__(self) -> Interruption:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is signal.SIG_IGN:
                    continue  # the caller chose to ignore it (a background job): so do we
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def highs_callback(self, callback_type: int, message: str, data_out: Any, data_in: Any, user_data: Any) -> None:
        """HiGHS's interrupt callback: stop when an interruption was requested; report progress on the way
        (:mod:`pdopt.progress`: best plan, bound, elapsed)."""
        if self.requested and data_in is not None:
            data_in.user_interrupt = True
        if data_out is not None:
            from pdopt.progress import report, solver_line

            best = _finite(getattr(data_out, "mip_primal_bound", None))
            bound = _finite(getattr(data_out, "mip_dual_bound", None))
            report(solver_line("HiGHS", float(getattr(data_out, "running_time", 0.0)), best, bound))


def _finite(value: object) -> float | None:
    """A bound HiGHS reports, or None for its infinities (no plan, no bound yet)."""
    return float(value) if isinstance(value, float) and abs(value) < 1e30 else None


class PartialResult(KeyboardInterrupt):
    """An interruption that carries what was done before it (rows of ``compare`` or ``bench``), so that the
    caller can still show it; a plain ``KeyboardInterrupt`` to code that does not look."""

    def __init__(self, done: Any) -> None:
        super().__init__("interrupted")
        self.done = done
