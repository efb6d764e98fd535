"""The performance layer: queueing formulas, prefill and decode capacity per shape, calibration, the capacity
table. This package file imports nothing, so that the verifier can use the pure formulas (:mod:`.queueing`,
:mod:`.calibrate`) without the planner's capacity code."""
