"""Calibration of the embedded persona to recorded behaviour (``prefshift persona calibrate``)."""
