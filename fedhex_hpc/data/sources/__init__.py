"""Input sources the dataset store converts: LHCO (raw, tables, features), MiniBooNE,
ROOT trees and generic column files. Each implements :class:`base.Source`."""
