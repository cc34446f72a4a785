"""Look up targets by registry name, with helpful errors for typos."""

from __future__ import annotations

import inspect

from fedhex_hpc.errors import ConfigError, suggest
from fedhex_hpc.targets.base import Target
from fedhex_hpc.targets.catalog import TARGETS, Factory

__all__ = ["TARGETS", "get_target", "list_targets", "target_params"]


def _factory(name: str) -> Factory:
    """Return the factory for ``name`` or raise ``ConfigError`` suggesting close names."""
    try:
        return TARGETS[name]
    except KeyError:
        hint = suggest(name, TARGETS, n=3, cutoff=0.5) or f"; valid: {', '.join(TARGETS)}"
        raise ConfigError(f"unknown target {name!r}{hint}") from None


def target_params(name: str) -> dict[str, object]:
    """Parameters accepted by a target and their defaults.

    Args:
        name: Registry name.

    Returns:
        Mapping of parameter name to default value (empty for fixed targets).

    Raises:
        ConfigError: If ``name`` is not registered.
    """
    signature = inspect.signature(_factory(name))
    return {param: spec.default for param, spec in signature.parameters.items()}


def get_target(name: str, **params: object) -> Target:
    """Build a registered target.

    Args:
        name: Registry name, e.g. ``"dim2/three_in_row"``.
        **params: Target parameters (e.g. ``seed``, ``radius``, ``n_components``).

    Returns:
        The target.

    Raises:
        ConfigError: If the name is unknown (the message suggests the nearest names), a
            parameter is not accepted by this target, or a parameter value is invalid.
    """
    valid = target_params(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        accepted = ", ".join(valid) if valid else "none"
        raise ConfigError(
            f"target {name!r} got unknown parameter(s) {', '.join(unknown)}; "
            f"valid parameters: {accepted}"
        )
    return TARGETS[name](**params)


def list_targets() -> list[tuple[str, str]]:
    """All registered targets with their default descriptions.

    Returns:
        ``(name, description)`` pairs in registry order.
    """
    return [(name, factory().description) for name, factory in TARGETS.items()]
