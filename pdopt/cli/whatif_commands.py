"""What-if commands: ranked alternatives to the cheapest plan (``plan --alternatives K``) and sweeps over a grid
of changes to an instance (``pdopt sweep``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pdopt.errors import InputError

if TYPE_CHECKING:
    from pdopt.instance import Instance
    from pdopt.optimize.options import SolverOptions

EXIT_OK, EXIT_INFEASIBLE, EXIT_SOLVER, EXIT_INTERRUPTED = 0, 3, 5, 130


def plan_alternatives(instance: Instance, args: argparse.Namespace, opts: SolverOptions) -> int:
    """``pdopt plan --alternatives K``: the K cheapest configurations (:mod:`pdopt.optimize.alternatives`).

    Exit 0 when at least one plan exists (fewer than K is said on standard error), 3 when none does, 130 when
    interrupted, 5 when the solver stopped without proving the cheapest plan."""
    from pdopt.io import dump_json
    from pdopt.optimize.alternatives import alternatives, to_dict
    from pdopt.plan import SolveStatus
    from pdopt.report import format_alternatives

    if args.maximize_scale:
        raise InputError("--alternatives ranks plans of the stated demand; it does not combine with "
                         "--maximize-scale")
    alts = alternatives(instance, args.alternatives, opts, scale_demand=args.scale_demand)
    if args.format == "csv":
        from pdopt.tables import placement_rows, rows_csv

        print(rows_csv([{"rank": a.rank, "plan_cost_usd_per_hour": a.cost_usd_per_hour, **row}
                        for a in alts.alternatives for row in placement_rows(a.plan)]), end="")
    else:
        print(dump_json(to_dict(alts)) if args.format == "json" else format_alternatives(alts))
    first = alts.first
    if first.solver.interrupted:
        print("pdopt: interrupted before the cheapest plan was proven", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not alts.alternatives:
        if first.has_plan:  # a plan, but its cost not proven: no ranking to give
            print(f"pdopt: the cheapest plan was not proven ({first.solver.message}); no alternatives ranked",
                  file=sys.stderr)
            return EXIT_SOLVER
        without = f" without {', '.join(args.without)}" if args.without else ""
        if args.format != "table":
            print(f"pdopt: no feasible plan{without}: {first.reason}", file=sys.stderr)
        return EXIT_INFEASIBLE if first.status in (SolveStatus.INFEASIBLE, SolveStatus.NO_SOLUTION) else EXIT_SOLVER
    if len(alts.alternatives) < alts.requested:
        print(f"pdopt: {len(alts.alternatives)} of the {alts.requested} alternatives asked for exist", file=sys.stderr)
    if alts.note:
        print(f"pdopt: {alts.note}", file=sys.stderr)
    return EXIT_OK
