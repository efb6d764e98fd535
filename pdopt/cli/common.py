"""What every command shares: the exit codes, reading the instance a command names, and the solver options of
its flags."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from pdopt.errors import InputError

if TYPE_CHECKING:
    from pdopt.estimate.search import SearchReport
    from pdopt.instance import Instance
    from pdopt.optimize.options import SolverOptions
    from pdopt.plan import Plan

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_INTERNAL, EXIT_SOLVER, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
"""Exit codes, each with one meaning (docs/cli.md): 0 success; 1 a plan failed verification; 2 invalid input;
3 no feasible plan, or none found within the limits; 4 an internal error; 5 a solver error; 130 interrupted."""


SEARCHES: list[SearchReport] = []
"""What the shape searches of the instances this process read did (the last one gives ``plan`` its time left)."""


def _print_search(report: SearchReport) -> None:
    SEARCHES.append(report)
    for line in report.lines():
        print(f"pdopt: {line}", file=sys.stderr)


def _load_instance(path: str, allow_paths: list[str], periods: bool = False, planning: bool = False) -> Instance:
    """Load an instance and print, on stderr, a warning for each field its chosen models do not use (and, for a
    command that does not plan periods, for a horizon it reads past), and what its shape search estimated (within
    its time budget when ``planning``: ``pdopt plan``; every other command estimates every shape, so that it sees
    at least the shapes a plan was made with)."""
    from pdopt.instance.unused import unused_fields
    from pdopt.io import load_instance

    SEARCHES.clear()  # only this instance's search counts (tests run many commands in one process)
    instance = load_instance(path, allow_paths, on_estimate=_print_search, estimate_budget=planning)
    notes = unused_fields(instance)
    if instance.horizon is not None and not periods:
        notes.append(f"horizon ({len(instance.horizon.periods)} periods): this command uses each workload's own "
                        "values, not what by_period restates; `pdopt plan` plans the periods")
    for warning in notes:
        print(f"pdopt: warning: {warning}", file=sys.stderr)
    return instance


def solver_options(args: argparse.Namespace) -> SolverOptions:
    """The :class:`~pdopt.optimize.options.SolverOptions` of a command's solver flags (parser._solver_flags)."""
    from pdopt.optimize.options import SolverOptions

    cuts: bool | tuple[str, ...] = False if args.no_cuts else (args.cuts or True)
    time_limit = args.time_limit
    left = SEARCHES[-1].remaining_s() if SEARCHES else None
    if left is not None:  # a shape search's budget covers estimating and solving
        time_limit = max(1.0, left) if time_limit is None else min(time_limit, max(1.0, left))
    return SolverOptions(args.solver, time_limit, args.gap, args.threads, cuts=cuts,
                         pool_classes=not args.no_pool_classes)


def resolve_example(args: argparse.Namespace) -> None:
    """Set ``args.file`` from ``--example NAME`` (a bundled instance); InputError when both or neither are given.
    Commands without ``--example`` are left as they are."""
    if not hasattr(args, "example"):
        return
    if args.example is not None and args.file is not None:
        raise InputError(f"give an instance file or --example, not both (got {args.file} and --example "
                         f"{args.example})")
    if args.example is not None:
        from pdopt.io.library import example

        args.file = str(example(args.example))
    elif args.file is None:
        raise InputError(f"{args.command}: name an instance file, or a bundled example with --example NAME "
                         "(`pdopt examples` lists them)")


def unplanned_exit(plan: Plan, verb: str, noun: str) -> int | None:
    """For a command that plans first (``simulate``, ``report``): the exit code and one line when the plan it made
    cannot be used, 130 interrupted or 3 without a plan; None when it has a plan to go on with."""
    if plan.solver.interrupted:
        print(f"pdopt: interrupted while planning, before the {noun}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not plan.has_plan:
        print(f"pdopt: no feasible plan to {verb}: {plan.reason}", file=sys.stderr)
        return EXIT_INFEASIBLE
    return None


def _emit_yaml(doc: dict[str, Any], output: str | None, summary: str,
               details: list[dict[str, Any]] | None = None) -> int:
    """Print YAML, or write it to ``output``, never overwriting an existing file (the user's data is kept).
    ``details`` (each run's measured point) follow as YAML comments, so that the output pastes into an instance
    as it is."""
    from pdopt.io.files import dump_yaml, write_new

    text = dump_yaml(doc)
    if details:
        text += ("# measured points, one per run (for reading; not instance fields):\n"
                 + "".join(f"# {line}" for line in dump_yaml({"measured_points": details}).splitlines(True)))
    if output is None:
        print(text, end="")
        return EXIT_OK
    try:
        path = write_new(output, text, "output")
    except InputError as exc:
        raise InputError(f"--output: {exc}") from None
    print(f"wrote {path}: {summary}")
    return EXIT_OK
