"""The optimisation stage: model data, constraint families, build, solve, extract, diagnose, heuristics.

``Instance -> CapacityTable -> ModelData -> BuiltProblem -> Solution -> Plan`` (:mod:`pdopt.optimize.pipeline`).
"""
