"""Files shipped inside the package: bundled configs, study specs, site profiles, job templates.

They are package data, so a wheel or a container that holds only ``fedhex_hpc``
has them too. Every command that takes one of these files also takes its
bundled name: ``fedhex train lhco/anode``, ``fedhex sweep plan dim2``,
``fedhex submit ... --profile test-cluster``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fedhex_hpc.errors import ConfigError, listing, suggest

__all__ = ["KINDS", "bundled_names", "is_bundled", "resolve", "resource_dir"]

#: Kind of file -> folder inside the package and file suffix.
KINDS = {
    "config": ("configs", ".yaml"),
    "study": ("studies", ".yaml"),
    "profile": ("hpc/profiles", ".yaml"),
    "template": ("hpc/templates", ""),
}


def resource_dir(kind: str) -> Path:
    """The folder holding the bundled files of ``kind`` (see :data:`KINDS`)."""
    folder, _ = KINDS[kind]
    return Path(str(files(__name__))).joinpath(*folder.split("/"))


def bundled_names(kind: str) -> list[str]:
    """Names of the bundled files of ``kind``, e.g. ``lhco/anode`` for a config."""
    root = resource_dir(kind)
    suffix = KINDS[kind][1]
    pattern = f"*{suffix}" if suffix else "*"
    names = (p.relative_to(root).as_posix() for p in root.rglob(pattern) if p.is_file())
    return sorted(n.removesuffix(suffix) if suffix else n for n in names)


def is_bundled(path: str | Path) -> bool:
    """Whether ``path`` is one of the files shipped inside the package."""
    return Path(path).resolve().is_relative_to(Path(str(files(__name__))).resolve())


def resolve(kind: str, name_or_path: str | Path) -> Path:
    """A file given as a path (existing, or ending in the kind's suffix) or a bundled name.

    Raises:
        ConfigError: neither a file nor a bundled name; the message lists the
            nearest bundled names.
    """
    text = str(name_or_path)
    path = Path(text)
    if path.exists():
        return path
    suffix = KINDS[kind][1]
    candidate = resource_dir(kind) / (text if text.endswith(suffix) else text + suffix)
    if text and not path.is_absolute() and candidate.is_file():
        return candidate
    names = bundled_names(kind)
    raise ConfigError(
        f"{kind} {text} does not exist and is not a bundled {kind}"
        f"{suggest(text.removesuffix(suffix), names)}; bundled: {listing(names)}"
    )
