"""The ``pdopt`` command line: plan, capacity/curves, validate, verify, simulate, compare, bench, generate,
profile, schema.

Exit codes: 0 success; 1 a plan failed verification; 2 invalid input (a message that names the field, no
traceback); 3 no feasible plan, or none found within the limits (with the reason in the instance's terms); 4 an
internal error (one line; the traceback with ``--debug`` or ``PDOPT_DEBUG=1``); 5 a solver error; 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Any

from pdopt.cli import commands, data_commands, whatif_commands
from pdopt.cli.common import (
    EXIT_FAILED,
    EXIT_INFEASIBLE,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOLVER,
    resolve_example,
)
from pdopt.cli.parser import build_parser
from pdopt.errors import InputError, SolverUnavailableError

__all__ = ["EXIT_FAILED", "EXIT_INFEASIBLE", "EXIT_INPUT", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK",
           "EXIT_SOLVER", "main"]
DEBUG_VARIABLE = "PDOPT_DEBUG"
"""Set (to anything but 0 or empty) to print the traceback of an internal error."""

COMMANDS = {
    "plan": commands.cmd_plan, "capacity": commands.cmd_capacity, "curves": commands.cmd_capacity,
    "validate": commands.cmd_validate, "verify": commands.cmd_verify, "simulate": commands.cmd_simulate,
    "compare": commands.cmd_compare, "bench": commands.cmd_bench, "generate": data_commands.cmd_generate,
    "profile": data_commands.cmd_profile, "schema": data_commands.cmd_schema, "fidelity": commands.cmd_fidelity,
    "export": data_commands.cmd_export, "sweep": whatif_commands.cmd_sweep,
    "examples": data_commands.cmd_examples, "report": commands.cmd_report,
}


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pdopt`` console script."""
    args = build_parser().parse_args(argv)
    old_term = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        old_term = signal.signal(signal.SIGTERM, _terminate)  # SIGTERM outside a solve: one line and 130
    try:
        return _run(args)
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _run(args: Any) -> int:
    """Run the command; turn each kind of failure into its exit code (module docstring)."""
    from pdopt.progress import reporter

    try:
        resolve_example(args)
        with reporter():  # a status line on a terminal for long work (pdopt/progress.py); cleared before output
            return COMMANDS[args.command](args)
    except (InputError, SolverUnavailableError) as exc:
        print(f"pdopt: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("pdopt: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader closed the pipe (pdopt plan ... | head): nothing is wrong with pdopt
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # a bug: one line and a hint, the traceback only on request
        if args.debug or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
            traceback.print_exc()
        print(f"pdopt: internal error: {type(exc).__name__}: {exc}\n  this is a bug in pdopt; please report it "
              f"with the command and its input (--debug or {DEBUG_VARIABLE}=1 prints the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL
