"""The ``pdopt`` command line: plan, capacity/curves, validate, verify, simulate, compare, bench, generate,
profile, schema.

Exit codes: 0 success; 1 a plan failed verification or the solver failed; 2 invalid input (a message that names
the field, no traceback); 3 no feasible plan (with the reason in the instance's terms).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pdopt.cli import commands
from pdopt.cli.parser import build_parser
from pdopt.errors import InputError, SolverUnavailableError

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INFEASIBLE = (commands.EXIT_OK, commands.EXIT_FAILED, commands.EXIT_INPUT,
                                                     commands.EXIT_INFEASIBLE)

COMMANDS = {
    "plan": commands.cmd_plan, "capacity": commands.cmd_capacity, "curves": commands.cmd_capacity,
    "validate": commands.cmd_validate, "verify": commands.cmd_verify, "simulate": commands.cmd_simulate,
    "compare": commands.cmd_compare, "bench": commands.cmd_bench, "generate": commands.cmd_generate,
    "profile": commands.cmd_profile, "schema": commands.cmd_schema,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pdopt`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (InputError, SolverUnavailableError) as exc:
        print(f"pdopt: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
