"""Editing a run spec: the Config form and panel generated from the spec dataclasses,
spec files, and the preset library."""
