"""Setting plans side by side: heuristic baselines (:mod:`.baselines`), the benchmark command (:mod:`.bench`)
and the generator of synthetic scaling families (:mod:`.generate`)."""
