"""Browsing and comparing runs: the Runs dock and table, runs followed on disk, overlays, the
spec diff, exports and forks."""
