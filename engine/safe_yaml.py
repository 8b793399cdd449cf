"""YAML as the specs read it: yaml.safe_load, but every failure (bad YAML, duplicate keys, deep
nesting, too many values, a file too large or not UTF-8) is one ConfigError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine.errors import ConfigError, join_path, show

MAX_DEPTH = 64  # YAML nesting; a spec needs about 5
MAX_NODES = 20_000  # YAML values (aliases expanded); a spec has hundreds
MAX_TEXT = 256_000  # characters (and bytes of a file); a spec has a few thousand


try:
    from yaml.cyaml import CParser

    class _SafeLoader(
        yaml.composer.Composer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver
    ):
        """yaml.SafeLoader with libyaml's scanner and parser (several times faster) under
        PyYAML's own composer, which _Loader checks."""

        def __init__(self, text: str):
            CParser.__init__(self, text)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            yaml.composer.Composer.__init__(self)

except ImportError:  # PyYAML built without libyaml
    _SafeLoader = yaml.SafeLoader


class _Loader(_SafeLoader):
    """A safe loader that refuses nesting deeper than MAX_DEPTH (instead of a RecursionError) and
    more than MAX_NODES values, and turns scalars it cannot build (``2001-02-30``, a 5000-digit
    int) into YAML errors."""

    depth = nodes = 0

    def _too_deep(self, line: int) -> ConfigError:
        return ConfigError("spec", f"nested more than {MAX_DEPTH} deep (line {line + 1})")

    def fetch_flow_collection_start(self, token_class):
        # PyYAML's own scanner (without libyaml): here already, not only in compose_node, as
        # its look-ahead over many open brackets ("[[[[...") is quadratic in their number.
        if self.flow_level >= MAX_DEPTH:
            raise self._too_deep(self.line)
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent, index):
        self.depth += 1
        self.nodes += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self._too_deep(self.peek_event().start_mark.line)
            if self.nodes > MAX_NODES:
                raise _too_many()
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, TypeError) as exc:
            why = str(exc).split(";")[0]
            raise yaml.constructor.ConstructorError(
                problem=f"cannot read {show(node.value)}: {why}", problem_mark=node.start_mark
            ) from None


def _too_many() -> ConfigError:
    return ConfigError("spec", f"has more than {MAX_NODES} values (aliases expanded)")


def _check_node(node: yaml.Node, path: str, sizes: dict[int, int | None]) -> int:
    """Raise ConfigError on a duplicate key in any mapping (naming its path and line) or a
    recursive alias; return the node count with aliases expanded. Each node is walked once,
    however many aliases point at it."""
    if id(node) in sizes:
        if sizes[id(node)] is None:
            raise ConfigError(path or "spec", "an alias refers to the node that holds it")
        return sizes[id(node)]
    sizes[id(node)] = None
    size = 1
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            scalar = isinstance(key, yaml.ScalarNode)
            sub = join_path(path, key.value if scalar else "?")
            if scalar and (key.tag, key.value) in seen:
                raise ConfigError(sub, f"duplicate key (line {key.start_mark.line + 1})")
            seen.add((key.tag, key.value) if scalar else id(key))
            size += _check_node(key, sub, sizes) + _check_node(value, sub, sizes)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_check_node(v, join_path(path, i), sizes) for i, v in enumerate(node.value))
    sizes[id(node)] = size
    return size


def load_yaml(text: str) -> Any:
    """YAML text -> plain data, as yaml.safe_load but every failure a ConfigError: bad YAML,
    duplicate keys, nesting deeper than MAX_DEPTH, more than MAX_NODES nodes or MAX_TEXT
    characters."""
    if len(text) > MAX_TEXT:
        raise ConfigError("spec", f"has {len(text)} characters; a spec has at most {MAX_TEXT}")
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        if _check_node(node, "", {}) > MAX_NODES:
            raise _too_many()
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError("spec", f"not valid YAML{where}: {problem}") from None


def read_yaml(path: str | Path) -> Any:
    """A YAML file -> plain data (see ``load_yaml``). Every failure is a ConfigError."""
    p = Path(path)
    try:
        if p.exists() and not p.is_file():  # a folder, a pipe, /dev/zero: nothing to read
            raise ConfigError("spec", f"cannot read {p}: not a file")
        with p.open("rb") as f:
            data = f.read(MAX_TEXT + 1)
        if len(data) > MAX_TEXT:
            raise ConfigError("spec", f"cannot read {p}: more than {MAX_TEXT} bytes")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("spec", f"file not found: {p}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("spec", f"cannot read {p}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError("spec", f"cannot read {p}: {exc.strerror or exc}") from None
    return load_yaml(text)
