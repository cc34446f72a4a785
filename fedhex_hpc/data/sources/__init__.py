"""Input sources the dataset store converts: LHCO, MiniBooNE, ROOT."""
