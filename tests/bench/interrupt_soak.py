"""Interrupt soak: ``pdopt plan`` on fleet-L (20 s limit) signalled at random moments, with both solvers.

    .venv/bin/python tests/bench/interrupt_soak.py [RUNS_PER_SOLVER] [SEED]

Each run starts pdopt in its own session with a private ``$TMPDIR``, waits a random 0.2-6 s, sends SIGINT to the
group (a terminal's Ctrl-C), SIGINT to pdopt alone, or SIGTERM, and records the exit code, whether the output was
a plan, and whether a ``*-pulp.*`` file or a solver process was left. The result goes into
docs/untrusted-input.md.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pdopt.interrupt import child_pids


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 10
    rng = random.Random(int(argv[1]) if len(argv) > 1 else 0)
    with tempfile.TemporaryDirectory() as work:
        fleet = Path(work) / "fleet-L.yaml"
        subprocess.run([sys.executable, "-m", "pdopt", "generate", "--family", "fleet-L", "--seed", "0", "--output",
                        str(fleet)], check=True, capture_output=True)
        tally: collections.Counter[tuple[str, str, int, str, bool, bool]] = collections.Counter()
        for solver in ("cbc", "highs"):
            for _ in range(runs):
                tmp = Path(tempfile.mkdtemp(dir=work))
                how = rng.choice(["group", "process", "term"])
                wait = rng.uniform(0.2, 6.0)
                proc = subprocess.Popen([sys.executable, "-m", "pdopt", "plan", str(fleet), "--solver", solver,
                                         "--time-limit", "20", "--format", "json"], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp)},
                                        start_new_session=True)
                time.sleep(wait)
                if how == "group":
                    os.killpg(proc.pid, signal.SIGINT)
                else:
                    os.kill(proc.pid, signal.SIGINT if how == "process" else signal.SIGTERM)
                out, _ = proc.communicate(timeout=60)
                try:
                    got = json.loads(out)["status"]
                except (ValueError, KeyError):
                    got = "no plan printed"
                tally[(solver, how, proc.returncode, got, bool(list(tmp.iterdir())),
                       bool(child_pids(proc.pid)))] += 1
    print("| solver | signal | exit | output | files left | processes left | runs |")
    print("|---|---|---|---|---|---|---|")
    for (solver, how, code, got, files, procs), n in sorted(tally.items()):
        print(f"| {solver} | {how} | {code} | {got} | {files} | {procs} | {n} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
