"""Estimated profiles for shapes nobody has measured: a roofline, AIConfigurator, calibration, shape search."""
