"""Interpolation: does a conditional flow trained on some label points reproduce the
distribution at label points it never saw?

The spec names labelled data (a conditional target, or a dataset such as one
converted from ROOT files, one per mass point) and which points are held out;
each fold trains one conditional flow on its training points and judges it, the
nearest training point's events and quantile morphing at every held-out point
and at a few training points (controls) against the truth sample there.

Modules: ``spec``, ``labelled`` (points and events), ``split`` (folds),
``geometry`` (hull, nearest point, morphing weights), ``baselines``, ``judge``,
``study`` (plan and run a fold), ``collect`` and ``plots``. This package imports
none of them, so the study registry stays light.
"""

from __future__ import annotations

__all__: list[str] = []
