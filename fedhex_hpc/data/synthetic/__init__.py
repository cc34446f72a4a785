"""Synthetic input files in the public layouts, for tests, benchmarks and demos.

Their events are generated, not measured: never results. :mod:`.lhco` writes the
LHC Olympics 2020 R&D layouts.
"""
