"""YAML that remembers where everything came from, and problems that say where they are.

``load_yaml`` parses a file with PyYAML's safe loader and records the line of every mapping
key and every sequence item under its path, so a location such as ``("steps", 2, "owner")``
(the ``loc`` of a pydantic error) maps back to a line. Syntax errors and duplicate keys
become :class:`Problem` s, raised together in one :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]
MERGE_TAG = "tag:yaml.org,2002:merge"
# Syntax errors whose context is where the mistake was made (an unclosed bracket or quote).
UNCLOSED = ("while parsing a flow", "while scanning a quoted scalar", "while scanning a block scalar")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one file: ``playbooks/x.yaml:12: steps[2].owner: unknown role …``."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ConfigError(Exception):
    """The config or the playbooks are invalid; ``problems`` lists everything found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def format_loc(loc: Sequence[str | int]) -> str:
    """``("steps", 2, "owner")`` → ``steps[2].owner``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as people read it: relative to the working directory when it lies below it."""
    path = Path(path)
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)
    return str(path)


@dataclass
class Source:
    """Parsed YAML (``data``) plus the line of every key and item (``lines``, 1-based)."""

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Sequence[Any]) -> int | None:
        """The line of ``loc``, or of its longest prefix present in the file."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)

    def problem(self, loc: Sequence[Any], message: str) -> Problem:
        return Problem(self.file, self.line(loc), format_loc(loc), message)


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """By file then line (problems without a line first), duplicates removed."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file, p.line or 0))


# libyaml's parser when PyYAML was built with it: five times faster, and a bot loads about 50
# files when it starts. A file it refuses is parsed again by the pure-Python parser, whose
# messages and marks the problems below are written for (so a broken file reads the same).
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, file: str) -> Source:
    """Parse ``text``; raise ConfigError for a syntax error or a duplicated key."""
    if FAST_LOADER is not yaml.SafeLoader:
        try:
            return _parse(text, file, FAST_LOADER)
        except ConfigError:
            pass
    return _parse(text, file, yaml.SafeLoader)


def _parse(text: str, file: str, loader_class: type) -> Source:
    loader = loader_class(text)
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    try:
        node = loader.get_single_node()
        if node is not None:
            # Walk before constructing: construction flattens merge keys (<<) in place.
            lines[()] = node.start_mark.line + 1
            _record(loader, node, (), lines, problems, file)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_problem(exc, file)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file, None, "", f"YAML syntax error: {exc}")]) from None
    finally:
        loader.dispose()
    if problems:
        raise ConfigError(problems)
    return Source(file, data, lines)


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    """A syntax error at the line to fix: where an unclosed bracket or quote was opened,
    otherwise where the parser stopped."""
    context = exc.context_mark.line + 1 if exc.context_mark is not None else None
    problem = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
    parts = [exc.context or "", exc.problem or ""]
    if context is not None and problem is not None and context != problem:
        parts = [f"{parts[0]} (line {context})" if parts[0] else "", f"{parts[1]} (line {problem})"]
    message = "; ".join(part for part in parts if part)
    unclosed = (exc.context or "").startswith(UNCLOSED)
    line = context if unclosed and context is not None else (problem or context)
    return Problem(file, line, "", f"YAML syntax error: {message}")


def load_yaml(path: str | os.PathLike[str], file: str | None = None) -> Source:
    """Read and parse ``path``; ``file`` is the name used in problems (default: the path)."""
    file = file or display_path(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(file, None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(file, None, "", f"cannot read the file: {exc}")]) from None
    return parse_yaml(text, file)


def _record(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    loc: Loc,
    lines: dict[Loc, int],
    problems: list[Problem],
    file: str,
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        merges = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merges.append(value_node)
                continue
            key = _key(loader, key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(Problem(
                    file, line, format_loc((*loc, str(key))),
                    f"duplicate key {key!r} (first at line {seen[key]})",
                ))
                continue
            seen[key] = line
            lines[(*loc, key)] = line
            _record(loader, value_node, (*loc, key), lines, problems, file)
        for merged in merges:
            _record_merged(loader, merged, loc, seen, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = item.start_mark.line + 1
            _record(loader, item, (*loc, index), lines, problems, file)


def _record_merged(
    loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, seen: dict[Any, int], lines: dict[Loc, int]
) -> None:
    """Lines of keys a ``<<`` merge brings in (keys written explicitly win)."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _record_merged(loader, item, loc, seen, lines)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        if key_node.tag == MERGE_TAG:
            _record_merged(loader, value_node, loc, seen, lines)
            continue
        key = _key(loader, key_node)
        if key in seen:
            continue
        seen[key] = lines[(*loc, key)] = key_node.start_mark.line + 1
        # Problems inside the merged mapping are reported where it is written.
        _record(loader, value_node, (*loc, key), lines, [], "")


def _key(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        try:
            return loader.construct_object(node)
        except yaml.YAMLError:
            return node.value
    return f"<{node.id} key>"


# --- pydantic errors as problems --------------------------------------------------------

_TYPE_MESSAGES = {
    "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
    "list_type": "must be a list",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "missing": "required, but missing",
}


def validation_problems(
    error: ValidationError, source: Source, model: type[BaseModel] | None = None
) -> list[Problem]:
    """One Problem per pydantic error, located in ``source``; ``model`` (the root model that
    was validated) lets an unknown key's message list the keys allowed there."""
    problems = []
    for item in error.errors(include_url=False):
        loc = _clean_loc(item["loc"], source.data)
        problems.append(source.problem(loc, _message(item, loc, model)))
    return problems


def _clean_loc(loc: Sequence[Any], data: Any) -> Loc:
    """Drop pydantic's own segments (``[key]``, ``function-after[…]``) from a location."""
    cleaned: list[str | int] = []
    for part in loc:
        present = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        )
        if present:
            data = data[part]
        else:
            data = None
            if isinstance(part, str) and "[" in part:
                continue
        cleaned.append(part)
    return tuple(cleaned)


def _message(item: dict[str, Any], loc: Loc, model: type[BaseModel] | None) -> str:
    kind = item["type"]
    value = item.get("input")
    ctx = item.get("ctx") or {}
    if kind == "extra_forbidden":
        key = loc[-1] if loc else value
        allowed = _allowed_keys(model, loc[:-1]) if model is not None else []
        text = f"unknown key {key!r}"
        close = difflib.get_close_matches(str(key), allowed, n=1)
        if close:
            text += f" (did you mean {close[0]!r}?)"
        if allowed:
            text += f"; allowed keys: {', '.join(allowed)}"
        return text
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the allowed values')}, got {value!r}"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("ge", ctx.get("le"))
        return f"must be at {'least' if kind == 'greater_than_equal' else 'most'} {bound}, got {value!r}"
    if kind in _TYPE_MESSAGES:
        text = _TYPE_MESSAGES[kind]
    else:
        msg = str(item.get("msg", kind))
        text = msg[:1].lower() + msg[1:]
    if kind != "missing" and _is_scalar(value):
        text += f", got {value!r}"
    if kind == "string_type" and isinstance(value, bool):
        text += " (YAML reads yes/no/on/off/true/false as booleans: put the text in quotes)"
    return text


def _is_scalar(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float | bool) and len(repr(value)) <= 60)


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    target: Any = model
    for part in loc:
        target = _unwrap(target)
        if isinstance(target, type) and issubclass(target, BaseModel):
            fields = {(f.alias or name): f for name, f in target.model_fields.items()}
            if part not in fields:
                return []
            target = fields[part].annotation
        elif typing.get_origin(target) is list and isinstance(part, int):
            target = typing.get_args(target)[0]
        elif typing.get_origin(target) is dict:
            target = typing.get_args(target)[1]
        else:
            return []
    target = _unwrap(target)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return sorted((f.alias or name) for name, f in target.model_fields.items())
    return []


def _unwrap(target: Any) -> Any:
    """Strip ``Annotated[…]`` and ``X | None`` down to X."""
    while True:
        origin = typing.get_origin(target)
        if origin is typing.Annotated:
            target = typing.get_args(target)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(target) if a is not type(None)]
            if len(args) != 1:
                return target
            target = args[0]
        else:
            return target
