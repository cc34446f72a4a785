"""ROOT trees read with uproot: one column per expression, one row per selected event.

Expressions and the cut use uproot's Python expression language (branch names,
arithmetic, comparisons, ``&``/``|``, ``sqrt``, ``where``...), with one change so that
FEDHEX selections keep their ROOT (``TTree::Draw``) meaning:

* ``x[i]`` with a single index is **per event**: element ``i`` of each event's list,
  where ``i`` is a constant (``GenPhi_mass[0]``) or another branch
  (``TwoProng_massPi0[CBL_RecoPhi_twoprongindex]``). In plain uproot/awkward,
  ``x[0]`` would select the whole first *event*.
* An index that is negative or past the end of an event's list gives no value:
  such an event fails the cut (``Photon_pt[0] > 220`` is false without photons), and
  a column with no value in an event that passes the cut is a :class:`DataError`
  that asks for a cut removing those events (e.g. ``CBL_RecoPhi_twoprongindex >= 0``).
  FEDHEX marks a missing candidate with the index -1, which therefore never wraps
  around to the last element.
* A boolean subscript keeps awkward's meaning (``Jet_pt[Jet_pt > 30]`` filters
  each list), and so do slices (``Photon_pt[:, 0]``, which raises on an empty list).

Every column must reduce to one number per event. Files given as directories are
walked recursively for ``*.root``; every file adds its rows (files of one folder are
combined, never overwritten). Partitions are (file, entry range) pieces in path order.
"""

from __future__ import annotations

import ast
import functools
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd
import uproot
from uproot.language.python import PythonLanguage

from fedhex_hpc.data.sources.base import Column, Partition
from fedhex_hpc.errors import ConfigError, DataError, listing, suggest

__all__ = ["RootSource"]

#: Name under which per-event indexing is offered to uproot's expression language.
_INDEX_FUNCTION = "fedhex_at"
_TREE_CLASSES = ("TTree", "TNtuple", "TNtupleD")
_EVALUATION_ERRORS = (IndexError, TypeError, ValueError)
_LISTED_NAMES = 20


class _IndexingError(ValueError):
    """A per-event subscript that cannot be evaluated (message says which one)."""


def _leaf_kind(array: ak.Array) -> str:
    """The numpy dtype kind of the numbers inside ``array`` (``"O"`` if not numbers)."""
    try:
        return ak.to_numpy(ak.flatten(array, axis=None)).dtype.kind
    except (TypeError, ValueError):
        return "O"


def _at(values: ak.Array, index: object, text: str) -> ak.Array:
    """Element ``index`` of every event's list of ``values`` (ROOT semantics).

    ``index`` is an integer, one integer per event or a list of integers per event;
    out-of-range or negative indices give None. Boolean ``index`` filters as in awkward.
    """
    values = ak.Array(values)
    if values.ndim < 2:
        raise _IndexingError(
            f"{text!r} indexes values that have one number per event; only "
            "variable-length branches can be indexed"
        )
    if isinstance(index, numbers.Number):
        index = np.full(len(values), index)
    index = ak.Array(index)
    kind = _leaf_kind(index)
    if kind == "b":
        return values[index]
    if kind not in "iu" or index.ndim > 2:
        raise _IndexingError(f"the index of {text!r} is not an integer per event or per element")
    masked = ak.mask(index, (index >= 0) & (index < ak.num(values, axis=1)))
    if index.ndim == 1:
        return ak.firsts(values[ak.singletons(masked)])
    return values[masked]


_LANGUAGE = PythonLanguage(functions={**PythonLanguage.default_functions, _INDEX_FUNCTION: _at})


class _RootIndexing(ast.NodeTransformer):
    """Rewrite single-index subscripts ``x[i]`` into per-event ``fedhex_at(x, i, "x[i]")``."""

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        text = ast.unparse(node)
        self.generic_visit(node)
        if isinstance(node.slice, (ast.Slice, ast.Tuple)):
            return node
        call = ast.Call(
            func=ast.Name(id=_INDEX_FUNCTION, ctx=ast.Load()),
            args=[node.value, node.slice, ast.Constant(value=text)],
            keywords=[],
        )
        return ast.copy_location(call, node)


@dataclass(frozen=True)
class _Expression:
    """A user expression: what it fills (``label``), as written and as given to uproot."""

    label: str
    text: str
    code: str


def _compile(label: str, text: str) -> _Expression:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise DataError(f"{label}: expression {text!r} is not valid syntax ({exc.msg})") from None
    code = ast.unparse(ast.fix_missing_locations(_RootIndexing().visit(tree)))
    return _Expression(label, text, code)


def _message(exc: BaseException) -> str:
    """An error message on one line, without awkward's pointer to its C++ source."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.split(" (in compiled code")[0]


def _root_files(paths: Iterable[Path | str]) -> list[Path]:
    files: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            found = set(path.rglob("*.root"))
            if not found:
                raise DataError(f"folder {path} contains no *.root files")
            files |= found
        elif path.is_file():
            files.add(path)
        else:
            raise DataError(f"ROOT input {path} does not exist")
    if not files:
        raise DataError("no ROOT input files given")
    return sorted(files)


def _open(path: Path) -> uproot.ReadOnlyDirectory:
    try:
        return uproot.open(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable ROOT file ({_message(exc)})") from None


def _tree(file: uproot.ReadOnlyDirectory, path: Path, name: str) -> uproot.TTree:
    classes = file.classnames(cycle=False)
    found = classes.get(name)
    if found is not None and found not in _TREE_CLASSES:
        raise DataError(f"{path}: {name!r} is a {found}, not a TTree; only TTrees can be read")
    if found is None:
        keys = [f"{key} ({classname})" for key, classname in classes.items()]
        raise DataError(
            f"{path}: no tree {name!r}{suggest(name, classes)}; "
            f"keys in the file: {listing(keys, _LISTED_NAMES)}"
        )
    return file[name]


def _check_branches(tree: uproot.TTree, where: str, expressions: list[_Expression]) -> None:
    branches = list(tree.keys())
    for expression in expressions:
        try:
            _LANGUAGE.free_symbols(expression.code, set(branches), [], where, tree.object_path)
        except uproot.KeyInFileError as exc:
            raise DataError(
                f"{where}: {expression.label} {expression.text!r} uses unknown branch "
                f"{exc.key!r}{suggest(exc.key, branches)}; "
                f"{len(branches)} branches: {listing(branches, _LISTED_NAMES)}"
            ) from None


def _step_entries(tree: uproot.TTree, step_size: int | str, codes: list[str]) -> int:
    if isinstance(step_size, int):
        return step_size
    try:
        entries = tree.num_entries_for(step_size, expressions=codes, language=_LANGUAGE)
    except (TypeError, ValueError):
        raise ConfigError(
            f"step_size {step_size!r}: expected a number of entries or a size like '100 MB'"
        ) from None
    return max(1, int(entries))


def _evaluate(
    tree: uproot.TTree, expressions: list[_Expression], start: int, stop: int, where: str
) -> ak.Array:
    codes = list(dict.fromkeys(expression.code for expression in expressions))
    try:
        return tree.arrays(
            codes, entry_start=start, entry_stop=stop, language=_LANGUAGE, library="ak"
        )
    except _EVALUATION_ERRORS as exc:
        raise _blame(tree, expressions, start, stop, where, exc) from None


def _blame(
    tree: uproot.TTree,
    expressions: list[_Expression],
    start: int,
    stop: int,
    where: str,
    error: Exception,
) -> DataError:
    """A DataError naming the first expression that fails on its own."""
    for expression in expressions:
        try:
            tree.arrays([expression.code], entry_start=start, entry_stop=stop, language=_LANGUAGE)
        except _EVALUATION_ERRORS as exc:
            return DataError(f"{where}: {expression.label} {expression.text!r}: {_message(exc)}")
    return DataError(f"{where}: evaluating the expressions failed: {_message(error)}")


def _per_event(array: ak.Array, expression: _Expression, events: int, where: str) -> np.ndarray:
    """One value per event as a (possibly masked) numpy array, or a DataError."""
    described = f"{where}: {expression.label} {expression.text!r}"
    if len(array) != events:
        raise DataError(
            f"{described} gives {len(array)} values for {events} events; "
            "it must give one value per event"
        )
    if array.ndim > 1:
        first = expression.text if expression.text.isidentifier() else f"({expression.text})"
        raise DataError(
            f"{described} is variable-length (jagged); it must reduce to one value per "
            f"event, e.g. by indexing like {first}[0]"
        )
    if _leaf_kind(array) not in "biuf":
        raise DataError(f"{described} is not a number per event (type {ak.type(array)})")
    return ak.to_numpy(array, allow_missing=True)


def _column_values(
    values: np.ndarray, keep: np.ndarray, expression: _Expression, start: int, where: str
) -> np.ndarray:
    selected = values[keep]
    missing = np.ma.getmaskarray(selected)
    if missing.any():
        first = start + int(np.flatnonzero(keep)[np.flatnonzero(missing)[0]])
        raise DataError(
            f"{where}: {expression.label} {expression.text!r} has an index out of range in "
            f"{int(missing.sum())} events that pass the cut (first at entry {first}); add a "
            "cut that removes them"
        )
    return np.asarray(np.ma.getdata(selected), dtype=np.float64)


def _read_entries(
    path: str,
    tree_name: str,
    columns: tuple[_Expression, ...],
    cut: _Expression | None,
    start: int,
    stop: int,
) -> pd.DataFrame:
    """Evaluate ``columns`` on entries ``start``-``stop`` of one tree and apply ``cut``."""
    where = f"{path}:{tree_name} entries {start}-{stop}"
    expressions = [*columns, *([cut] if cut else [])]
    with _open(Path(path)) as file:
        arrays = _evaluate(file[tree_name], expressions, start, stop, where)
    events = stop - start
    keep = np.ones(events, dtype=bool)
    if cut is not None:
        passed = _per_event(arrays[cut.code], cut, events, where)
        keep = np.ma.filled(passed, False).astype(bool)
    data = {
        column.label: _column_values(
            _per_event(arrays[column.code], column, events, where), keep, column, start, where
        )
        for column in columns
    }
    return pd.DataFrame(data, columns=[column.label for column in columns])


def _check_names(features: dict[str, str], conditions: dict[str, str], weight: str | None) -> None:
    if not features:
        raise ConfigError("a ROOT source needs at least one feature expression")
    names = [*features, *conditions, *(["weight"] if weight is not None else [])]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"ROOT column names must be unique; repeated: {', '.join(repeated)}")


class RootSource:
    """Columns computed from a tree in one or more ROOT files.

    Args:
        paths: ROOT files, or folders searched recursively for ``*.root``.
        tree: Name (or ``dir/name`` path) of the TTree in every file.
        features: Output column name -> expression (see the module docstring).
        conditions: Output column name -> expression for conditioning inputs.
        weight: Expression for a per-event weight, stored as column ``weight``.
        cut: Boolean expression selecting events; events where it has no value fail.
        step_size: Entries per partition, or a memory size such as ``"100 MB"``
            converted to entries per file by uproot.

    Raises:
        DataError: A path is missing, a file is not ROOT, lacks the tree or a branch
            used by an expression, or an expression is not valid syntax.
        ConfigError: No features, repeated column names or an invalid ``step_size``.
    """

    name = "root"

    def __init__(
        self,
        paths: Sequence[Path | str],
        tree: str,
        features: dict[str, str],
        conditions: dict[str, str] | None = None,
        weight: str | None = None,
        cut: str | None = None,
        step_size: int | str = "100 MB",
    ) -> None:
        conditions = conditions or {}
        _check_names(features, conditions, weight)
        if isinstance(step_size, bool) or (isinstance(step_size, int) and step_size < 1):
            raise ConfigError(f"step_size must be a positive number of entries, not {step_size}")
        self.tree = tree
        self.columns = [
            *(Column(name, "feature") for name in features),
            *(Column(name, "condition") for name in conditions),
            *([Column("weight", "weight")] if weight is not None else []),
        ]
        specs = {**features, **conditions, **({"weight": weight} if weight is not None else {})}
        self._expressions = tuple(_compile(label, text) for label, text in specs.items())
        self._cut = _compile("cut", cut) if cut is not None else None
        self._files = _root_files(paths)
        self._partitions = self._plan(step_size)

    def _plan(self, step_size: int | str) -> list[Partition]:
        expressions = [*self._expressions, *([self._cut] if self._cut else [])]
        pieces: list[tuple[Path, int, int]] = []
        for path in self._files:
            with _open(path) as file:
                tree = _tree(file, path, self.tree)
                _check_branches(tree, f"{path}:{self.tree}", expressions)
                step = _step_entries(tree, step_size, [e.code for e in expressions])
                entries = tree.num_entries
            pieces += [(path, a, min(a + step, entries)) for a in range(0, entries, step)]
        if not pieces:
            raise DataError(f"tree {self.tree!r} has no entries in any of {len(self._files)} files")
        return [self._partition(index, *piece) for index, piece in enumerate(pieces)]

    def _partition(self, index: int, path: Path, start: int, stop: int) -> Partition:
        read = functools.partial(
            _read_entries, str(path), self.tree, self._expressions, self._cut, start, stop
        )
        rows = None if self._cut is not None else stop - start
        return Partition(index, f"{path}:{self.tree} entries {start}-{stop}", read, rows)

    def partitions(self) -> list[Partition]:
        """(file, entry range) pieces, sorted by path then entry range."""
        return list(self._partitions)

    def source_files(self) -> list[Path]:
        """Every ROOT file read, sorted."""
        return list(self._files)
