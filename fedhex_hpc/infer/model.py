"""The likelihood model of a spec: processes, their yields and conditions, and the parameters.

A model spec is YAML (paths are relative to the spec file)::

    name: gauss_exp_bkg
    likelihood: extended          # extended | shape | binned
    processes:
      peak:
        flow: ../runs/gauss-exp   # a finished run folder, or
        # target: cond/gauss_exp_bkg   (an exact conditional density: the reference fit)
        events: 1000              # nominal yield
        rates: [norm]             # free parameters multiplying the yield (signal strength mu)
        lognormal: {lumi: 1.025}  # nuisance -> kappa: yield x kappa^theta
        conditions: {mass_true: mass}   # flow condition -> parameter name or number
        shifts: {mass_true: {scale: 0.5}}   # condition + 0.5 * theta_scale
    parameters:
      mass: {start: 172.5}        # no start: a coarse scan over the limits picks one
      norm: {start: 1.0, limits: [0.0, 10.0]}
      lumi: {}                    # a nuisance (lognormal or shifts): unit Gaussian constraint
    binning: {feature: mass_reco, bins: 50, range: [160, 185]}   # binned only

Condition parameters are bounded to the trained range of every flow they enter
unless extrapolation is allowed; rates default to ``[0, inf)``, nuisances to
``[-5, 5]``. The model is linear in the parameters where they enter: each
process's conditions are ``A @ p + b`` and its log-yield adds rates and
``theta * ln(kappa)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from fedhex_hpc.config import parse_section
from fedhex_hpc.errors import ConfigError, listing, suggest
from fedhex_hpc.infer.density import Density, FlowDensity, TargetDensity

__all__ = [
    "BinningSpec",
    "LikelihoodModel",
    "ModelSpec",
    "ParameterSpec",
    "Process",
    "ProcessSpec",
    "build_model",
    "load_model_spec",
]

_NUISANCE_LIMITS = (-5.0, 5.0)


@dataclass
class ProcessSpec:
    """One process: a conditional density, its yield and how parameters enter it."""

    flow: str = ""
    target: str = ""
    target_params: dict[str, Any] = field(default_factory=dict)
    events: float = field(default=1.0, metadata={"min": 0, "exclusive": True})
    rates: list[str] = field(default_factory=list)
    lognormal: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)
    shifts: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParameterSpec:
    """Start, limits and whether a parameter is fixed (NaN start: found by a coarse scan)."""

    start: float = math.nan
    limits: list[float] = field(default_factory=list)
    fixed: bool = False


@dataclass
class BinningSpec:
    """Bins of the binned cross-check (one feature)."""

    feature: str = ""
    bins: int = field(default=40, metadata={"min": 1})
    range: list[float] = field(default_factory=list)


@dataclass
class ModelSpec:
    """A validated model spec (see the module docstring)."""

    name: str = "model"
    likelihood: Literal["extended", "shape", "binned"] = "extended"
    processes: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    binning: BinningSpec = field(default_factory=BinningSpec)


@dataclass
class Process:
    """A built process: its density, yield and the linear maps of the parameters.

    ``conditions = params @ cond_matrix.T + cond_offset``;
    ``log(yield) = log(events) + sum(log(params[rates])) + params @ log_kappa``.
    """

    name: str
    density: Density
    events: float
    rates: list[int]
    log_kappa: np.ndarray
    cond_matrix: np.ndarray
    cond_offset: np.ndarray


@dataclass
class LikelihoodModel:
    """Parameters (names, kinds, starts, limits, fixed) and processes of a likelihood."""

    name: str
    likelihood: str
    names: list[str]
    kinds: list[str]
    starts: np.ndarray
    limits: list[tuple[float, float]]
    fixed: list[bool]
    processes: list[Process]
    feature_names: list[str]
    binning: BinningSpec

    def index(self, name: str) -> int:
        """Position of parameter ``name``.

        Raises:
            ConfigError: no such parameter (with a suggestion).
        """
        if name not in self.names:
            raise ConfigError(
                f"model {self.name} has no parameter {name}{suggest(name, self.names)}; "
                f"parameters: {listing(self.names)}"
            )
        return self.names.index(name)

    @property
    def nuisances(self) -> np.ndarray:
        """Boolean mask of the unit-Gaussian-constrained parameters."""
        return np.array([k == "nuisance" for k in self.kinds])


def load_model_spec(path: str | Path) -> tuple[ModelSpec, Path]:
    """Read a model spec file; returns the spec and the folder its paths are relative to.

    Raises:
        ConfigError: missing file, not YAML, unknown keys or bad values.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model spec {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    try:
        return parse_section(ModelSpec, raw, ""), path.parent
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _density(spec: ProcessSpec, where: str, base: Path, cache: dict) -> Density:
    if bool(spec.flow) == bool(spec.target):
        raise ConfigError(f"{where}: give exactly one of flow (a run folder) or target")
    key = (
        ("flow", str((base / spec.flow).resolve()))
        if spec.flow
        else ("target", spec.target, repr(sorted(spec.target_params.items())))
    )
    if key not in cache:
        if spec.flow:
            cache[key] = FlowDensity.open(base / spec.flow)
        else:
            try:
                cache[key] = TargetDensity(spec.target, spec.target_params)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{where}.target_params: {exc}") from None
    return cache[key]


class _Builder:
    """Collects the parameters as the processes name them."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.kinds: list[str] = []
        self.ranges: dict[str, list[tuple[np.ndarray, str]]] = {}

    def use(self, name: Any, kind: str, where: str) -> int:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: expected a parameter name, got {name!r}")
        if name in self.names:
            i = self.names.index(name)
            if self.kinds[i] != kind:
                raise ConfigError(f"{where}: {name} is a {self.kinds[i]} parameter, not a {kind}")
            return i
        self.names.append(name)
        self.kinds.append(kind)
        return len(self.names) - 1

    def process(self, name: str, raw: Any, base: Path, cache: dict) -> dict:
        where = f"processes.{name}"
        spec = parse_section(ProcessSpec, raw, where)
        density = _density(spec, where, base, cache)
        cond_names = density.condition_names
        for key in (*spec.conditions, *spec.shifts):
            if key not in cond_names:
                raise ConfigError(
                    f"{where}: {key} is not a condition of {density.label}"
                    f"{suggest(str(key), cond_names)}; its conditions: {listing(cond_names)}"
                )
        missing = [c for c in cond_names if c not in spec.conditions]
        if missing:
            raise ConfigError(
                f"{where}.conditions: give a parameter or a number for {listing(missing)}"
            )
        terms: list[tuple[int, int, float]] = []  # (condition, parameter, coefficient)
        offset = np.zeros(len(cond_names))
        for j, cname in enumerate(cond_names):
            value = spec.conditions[cname]
            if isinstance(value, int | float) and not isinstance(value, bool):
                offset[j] = float(value)
            else:
                i = self.use(value, "condition", f"{where}.conditions.{cname}")
                terms.append((j, i, 1.0))
                low, high = density.trained_range
                self.ranges.setdefault(value, []).append(
                    (np.array([low[j], high[j]]), density.label)
                )
            shifts = spec.shifts.get(cname, {})
            if not isinstance(shifts, dict):
                raise ConfigError(f"{where}.shifts.{cname} must map nuisance names to widths")
            for nuisance, width in shifts.items():
                if not isinstance(width, int | float):
                    raise ConfigError(f"{where}.shifts.{cname}.{nuisance} must be a number")
                terms.append((j, self.use(nuisance, "nuisance", where + ".shifts"), float(width)))
        rates = [self.use(r, "rate", f"{where}.rates") for r in spec.rates]
        kappas = []
        for nuisance, kappa in spec.lognormal.items():
            if not isinstance(kappa, int | float) or not kappa > 0:
                raise ConfigError(f"{where}.lognormal.{nuisance} must be a positive kappa")
            kappas.append((self.use(nuisance, "nuisance", f"{where}.lognormal"), float(kappa)))
        return {
            "name": name,
            "density": density,
            "events": spec.events,
            "rates": rates,
            "terms": terms,
            "offset": offset,
            "kappas": kappas,
        }


def _limits(
    name: str, kind: str, spec: ParameterSpec, ranges: list, extrapolate: bool
) -> tuple[float, float]:
    where = f"parameters.{name}"
    if spec.limits and (len(spec.limits) != 2 or not spec.limits[0] < spec.limits[1]):
        raise ConfigError(f"{where}.limits must be [low, high] with low < high")
    if kind == "rate":
        low, high = spec.limits or (0.0, math.inf)
        if low < 0:
            raise ConfigError(f"{where}.limits: a rate cannot be negative")
    elif kind == "nuisance":
        low, high = spec.limits or _NUISANCE_LIMITS
    else:
        trained = (max(r[0][0] for r in ranges), min(r[0][1] for r in ranges))
        low, high = spec.limits or trained
        outside = low < trained[0] - 1e-12 or high > trained[1] + 1e-12
        if outside and not extrapolate:
            label = ", ".join(sorted({r[1] for r in ranges}))
            raise ConfigError(
                f"{where}.limits [{low:g}, {high:g}] leave the trained range "
                f"[{trained[0]:g}, {trained[1]:g}] of {label}; pass --allow-extrapolation"
            )
    if not math.isnan(spec.start) and not low <= spec.start <= high:
        hint = "; pass --allow-extrapolation" if kind == "condition" and not extrapolate else ""
        raise ConfigError(
            f"{where}.start {spec.start:g} is outside its limits [{low:g}, {high:g}]{hint}"
        )
    return float(low), float(high)


def _default_start(kind: str, spec: ParameterSpec) -> float:
    if not math.isnan(spec.start):
        return spec.start
    return {"rate": 1.0, "nuisance": 0.0}.get(kind, math.nan)


def build_model(
    spec: ModelSpec, base: str | Path = ".", allow_extrapolation: bool = False
) -> LikelihoodModel:
    """Load the processes' densities and lay out the parameters.

    Args:
        spec: The parsed spec.
        base: Folder that relative run paths start from.
        allow_extrapolation: Let condition parameters leave the trained range.

    Raises:
        ConfigError: no processes, a condition the flow does not have, a parameter
            in ``parameters`` that no process uses, limits or starts outside the
            trained range, processes with different features.
        RunDirError: a flow's run is missing or not finished.
    """
    if not spec.processes:
        raise ConfigError(f"model {spec.name}: no processes")
    builder, cache = _Builder(), {}
    built = [builder.process(n, raw, Path(base), cache) for n, raw in spec.processes.items()]
    features = built[0]["density"].feature_names
    for item in built[1:]:
        if item["density"].feature_names != features:
            raise ConfigError(
                f"processes.{item['name']} has features {item['density'].feature_names}; "
                f"processes.{built[0]['name']} has {features}"
            )
    for name in spec.parameters:
        if name not in builder.names:
            raise ConfigError(
                f"parameters.{name} is used by no process{suggest(str(name), builder.names)}; "
                f"parameters in use: {listing(builder.names)}"
            )
    k = len(builder.names)
    params = {
        n: parse_section(ParameterSpec, spec.parameters.get(n), f"parameters.{n}")
        for n in builder.names
    }
    limits = [
        _limits(n, kind, params[n], builder.ranges.get(n, []), allow_extrapolation)
        for n, kind in zip(builder.names, builder.kinds, strict=True)
    ]
    processes = []
    for item in built:
        n_cond = len(item["density"].condition_names)
        matrix = np.zeros((n_cond, k))
        for j, i, coefficient in item["terms"]:
            matrix[j, i] += coefficient
        log_kappa = np.zeros(k)
        for i, kappa in item["kappas"]:
            log_kappa[i] += math.log(kappa)
        processes.append(
            Process(
                name=item["name"],
                density=item["density"],
                events=item["events"],
                rates=item["rates"],
                log_kappa=log_kappa,
                cond_matrix=matrix,
                cond_offset=item["offset"],
            )
        )
    return LikelihoodModel(
        name=spec.name,
        likelihood=spec.likelihood,
        names=builder.names,
        kinds=builder.kinds,
        starts=np.array(
            [
                _default_start(kd, params[n])
                for n, kd in zip(builder.names, builder.kinds, strict=True)
            ]
        ),
        limits=limits,
        fixed=[params[n].fixed for n in builder.names],
        processes=processes,
        feature_names=list(features),
        binning=spec.binning,
    )
