"""The one error type a user sees for a bad run spec, and how its messages write a field path
and a user's value."""

import reprlib
from typing import Any


class ConfigError(ValueError):
    """A run spec is invalid. ``path`` names the field (``model.n_head``), ``reason`` says why."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


class _Short(reprlib.Repr):
    """repr cut short for one-line messages; a huge int is described, never written out."""

    def __init__(self):
        super().__init__()
        self.maxstring = self.maxother = 60

    def repr_int(self, x: int, level: int) -> str:
        return f"a {x.bit_length()}-bit integer" if abs(x) > 10**30 else repr(x)


_SHORT = _Short()


def show(value: Any) -> str:
    """A user's value in a message: short and on one line, whatever its size or type."""
    text = _SHORT.repr(value)
    return text if len(text) <= 80 else text[:76] + " ..."


def join_path(path: str, key: Any) -> str:
    """``path`` + ``key`` as a message names it: ``a.b``, ``a[3]``."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    if not isinstance(key, str) or not key.isprintable() or len(key) > 60:
        key = show(key)
    return f"{path}.{key}" if path else key
