"""Safe YAML reading for user documents: plain JSON-like data only, bounded, every refusal located.

`load_yaml_documents` builds each document straight from libyaml's parse events, with an
explicit stack (no recursion), into what a Kubernetes object can hold once it is JSON:
str, int, float, bool, None, list, and dict with str keys. Everything else YAML can express
is decided here, once, so nothing downstream (pydantic, json.dumps, an error message
printing the value) meets a type it cannot handle:

* timestamps (`2024-01-02`, even `2001-13-45`) stay their source text, as Kubernetes keeps them;
* a scalar key (`1:`, `2024-01-01:`, `~:`) is its source text; a list or mapping as key is refused;
* explicit tags are the JSON ones (`!!str !!int !!float !!bool !!null !!seq !!map`, plus
  `!!timestamp`) and must fit their value (`!!bool maybe` is refused); others (`!!binary`,
  `!!set`, `!foo`, `!!python/...`) are refused;
* integers longer than MAX_INT_CHARS characters, nesting deeper than MAX_YAML_DEPTH, a key given
  twice, and a text of more than MAX_YAML_NODES values (each document and every use of an
  *alias counted in full: a "billion laughs") are refused, the last before anything big is built.

Each refusal is a `YamlInputError` carrying the field path, the line and column, and the
offending source text; syntax errors from libyaml become one too (line and column, no path).
One raised error lists in `errors` every problem of the text, so all are reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from kubenas.experiment_errors import format_path

__all__ = [
    "MAX_INT_CHARS",
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "YamlBombError",
    "YamlDuplicateKeyError",
    "YamlInputError",
    "load_yaml_documents",
    "source_line",
]

# A Katib Experiment with a full Job spec has a few hundred nodes; a hundred thousand is far
# beyond any real one and still builds in well under a second.
MAX_YAML_NODES = 100_000

# Kubernetes stores at most ~1.5 MiB per object, so a larger Experiment could never be applied.
MAX_YAML_BYTES = 4 * 1024 * 1024

# A Job trialSpec's deepest field (…containers[0].env[0].valueFrom.secretKeyRef.name) is ~15
# levels down; 100 leaves room for any real resource and keeps every recursive walker safe.
MAX_YAML_DEPTH = 100

# Kubernetes numbers are int64 (19 digits); 100 characters (hex, octal, `_` included) keeps an
# integer far from Python's 4,300-digit str() limit in every base.
MAX_INT_CHARS = 100

# libyaml's parser when present: the same events and error marks, several times faster.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# libyaml reports a bad character's position in UTF-8 bytes, PyYAML's reader in characters.
_POSITION_IN_BYTES = _BaseLoader is not yaml.SafeLoader

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")}
_ALLOWED_TAGS = "!!str, !!int, !!float, !!bool, !!null, !!timestamp, !!seq, !!map"

FieldPath = tuple[str | int, ...]


class YamlInputError(yaml.YAMLError):
    """YAML that is refused: `reason` at `path` (field parts, may be empty), `line`/`column` (1-based).

    `errors` lists every problem found in the text, this one first; building goes on past a
    problem that leaves the document's shape intact (a tag, an integer, a key) to report them all.
    """

    def __init__(self, reason: str, path: FieldPath = (), mark: Any = None, found: str | None = None) -> None:
        self.reason, self.path, self.found = reason, path, found
        self.line = mark.line + 1 if mark is not None else None
        self.column = mark.column + 1 if mark is not None else None
        self.errors: list[YamlInputError] = [self]
        super().__init__(str(self))

    @property
    def where(self) -> str:
        return f"line {self.line}, column {self.column}" if self.line is not None else ""

    def __str__(self) -> str:
        parts = [p for p in (format_path(self.path), self.where) if p]
        return f"{' at '.join(parts)}: {self.reason}" if parts else self.reason


class YamlDuplicateKeyError(YamlInputError):
    """A key given twice in one mapping."""


class YamlBombError(YamlInputError, ValueError):
    """A text whose documents and aliases expand past MAX_YAML_NODES values, or an alias inside its own anchor."""


_OPEN = object()  # an anchor whose node is still being built: an alias to it is recursive


@dataclass
class _Frame:
    """A list or mapping being built: its path, and for a mapping the key waiting for its value."""

    path: FieldPath
    value: list[Any] | dict[str, Any]
    anchor: str | None
    start_nodes: int
    mark: Any
    key: str | None = None
    key_mark: Any = None
    key_lines: dict[str, int] = field(default_factory=dict)
    merges: list[dict[str, Any]] = field(default_factory=list)
    merge_next: bool = False  # the key waiting for its value is a merge key (<<)
    skip_next: bool = False  # the key waiting for its value was refused: drop the value


class _Builder:
    """Turns one event stream into plain documents; `nodes` counts values, aliases expanded.

    A problem that breaks the structure (syntax, depth, size, a recursive alias) stops at once;
    others are collected in `problems` and the offending value is left out (None, or dropped).
    """

    def __init__(self, loader: Any, text: str, max_nodes: int) -> None:
        self.loader, self.text, self.max_nodes = loader, text, max_nodes
        self.documents: list[Any] = []
        self.problems: list[YamlInputError] = []
        # One budget for the whole text, a document counting as a value: a million `---` lines
        # are as much work as a million values.
        self.nodes = 0

    def run(self) -> list[Any]:
        try:
            while self._check_event():
                event = self.loader.get_event()
                if isinstance(event, yaml.DocumentStartEvent):
                    self.documents.append(self._document())
        except YamlInputError as fatal:
            self.problems.append(fatal)
        if self.problems:
            first = self.problems[0]
            first.errors = self.problems
            raise first
        return self.documents

    def _check_event(self) -> bool:
        try:
            return bool(self.loader.check_event())
        except yaml.MarkedYAMLError as exc:
            raise _syntax_error(exc) from None
        except yaml.reader.ReaderError as exc:
            raise _reader_error(exc, self.text) from None

    def _next(self) -> Any:
        self._check_event()
        return self.loader.get_event()

    def _document(self) -> Any:
        self._count(1)
        # anchor -> (value, size with aliases expanded, source text when a scalar: its text as a key)
        self.anchors: dict[str, tuple[Any, int, str | None] | object] = {}
        stack: list[_Frame] = []
        root: list[Any] = []
        while True:
            event = self._next()
            if isinstance(event, yaml.DocumentEndEvent):
                return root[0] if root else None
            path = self._child_path(stack)
            if isinstance(event, yaml.AliasEvent):
                value, size, text = self._alias(event, path)
                self._count(size)
                self._add(stack, root, value, event.start_mark, text)
            elif isinstance(event, yaml.ScalarEvent):
                self._count(1)
                value = self._scalar(event, path)
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, 1, event.value)
                self._add(stack, root, value, event.start_mark, event.value, merge=bool(event.implicit[0]))
            elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                self._start(stack, event, path)
            else:  # SequenceEndEvent / MappingEndEvent
                frame = stack.pop()
                value = self._finish(frame)
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (value, self.nodes - frame.start_nodes + 1, None)  # + itself
                self._add(stack, root, value, frame.mark, None)

    def _count(self, size: int) -> None:
        self.nodes += size
        if self.nodes > self.max_nodes:
            raise YamlBombError(
                f"document {len(self.documents) + 1} brings the file past {self.max_nodes} YAML values (a document is one), "
                "counting every use of an *alias in full (a 'billion laughs' document?); an Experiment has a few hundred"
            )

    @staticmethod
    def _child_path(stack: list[_Frame]) -> FieldPath:
        if not stack:
            return ()
        frame = stack[-1]
        if isinstance(frame.value, list):
            return (*frame.path, len(frame.value))
        return (*frame.path, frame.key) if frame.key is not None else frame.path

    def _start(self, stack: list[_Frame], event: Any, path: FieldPath) -> None:
        if len(stack) >= MAX_YAML_DEPTH:
            raise YamlInputError(f"nesting deeper than {MAX_YAML_DEPTH} levels is refused; a Kubernetes resource "
                                 "needs about 15", path, event.start_mark, f"a {_kind(event)} at level {len(stack) + 1}")
        is_list = isinstance(event, yaml.SequenceStartEvent)
        if event.tag not in (None, "!", f"{_TAG}seq" if is_list else f"{_TAG}map"):
            self.problems.append(_tag_error(event.tag, _kind(event), path, event.start_mark, _short(event.tag)))
        self._count(1)
        if event.anchor is not None:
            self.anchors[event.anchor] = _OPEN
        stack.append(_Frame(path, [] if is_list else {}, event.anchor, self.nodes, event.start_mark))

    def _add(self, stack: list[_Frame], root: list[Any], value: Any, mark: Any, text: str | None, merge: bool = False) -> None:
        """Put a finished value in its parent; in a mapping, `text` is its key text (None: not a scalar)."""
        if not stack:
            root.append(value)
            return
        frame = stack[-1]
        if isinstance(frame.value, list):
            frame.value.append(value)
        elif frame.key is None:
            self._take_key(frame, mark, text, merge)
        else:
            key, frame.key = frame.key, None
            if frame.skip_next:
                frame.skip_next = False
            elif frame.merge_next:
                frame.merge_next = False
                frame.merges.extend(self._merge_sources(value, (*frame.path, key), frame.key_mark))
            else:
                frame.value[key] = value

    def _take_key(self, frame: _Frame, mark: Any, text: str | None, merge: bool) -> None:
        if text is None:
            self.problems.append(YamlInputError("a list or mapping as a mapping key is not supported: keys must be text",
                                                frame.path, mark, "a list or mapping"))
            frame.key, frame.skip_next = "?", True  # "?" only names the dropped value's place in paths
        elif merge and text == "<<":
            frame.key, frame.merge_next = text, True
        elif text in frame.key_lines:
            self.problems.append(YamlDuplicateKeyError(
                f"duplicate key {text!r}: given again at line {mark.line + 1} (first at line {frame.key_lines[text]}); "
                "give each key once", (*frame.path, text), mark, text))
            frame.key, frame.skip_next = text, True
        else:
            frame.key_lines[text] = mark.line + 1
            frame.key = text
        frame.key_mark = mark

    def _merge_sources(self, value: Any, path: FieldPath, mark: Any) -> list[dict[str, Any]]:
        sources = value if isinstance(value, list) else [value]
        if all(isinstance(s, dict) for s in sources):
            return sources
        self.problems.append(YamlInputError("a merge key (<<) takes a mapping or a list of mappings", path, mark))
        return []

    @staticmethod
    def _finish(frame: _Frame) -> Any:
        if not frame.merges or not isinstance(frame.value, dict):
            return frame.value
        # As YAML's merge key says: keys given here win, then the first merged mapping that has the key.
        merged: dict[str, Any] = {}
        for source in frame.merges:
            for key, value in source.items():
                merged.setdefault(key, value)
        merged.update(frame.value)
        return merged

    def _alias(self, event: Any, path: FieldPath) -> tuple[Any, int, str | None]:
        target = self.anchors.get(event.anchor)
        if target is None:
            self.problems.append(YamlInputError(f"alias *{event.anchor} names no anchor defined before it", path,
                                                event.start_mark, f"*{event.anchor}"))
            return None, 1, f"*{event.anchor}"
        if target is _OPEN:
            raise YamlBombError("an alias refers to the node that contains it (a recursive document)", path, event.start_mark)
        assert isinstance(target, tuple)
        return target

    def _scalar(self, event: Any, path: FieldPath) -> Any:
        try:
            return self._scalar_value(event, path)
        except YamlInputError as exc:
            self.problems.append(exc)
            return None

    def _scalar_value(self, event: Any, path: FieldPath) -> Any:
        text: str = event.value
        explicit = event.tag not in (None, "!")
        implicit_tag = self.loader.resolve(yaml.ScalarNode, text, (True, False))
        tag = event.tag if explicit else self.loader.resolve(yaml.ScalarNode, text, event.implicit)
        found = f"{_short(tag)} {text}" if explicit else text
        if explicit and tag not in _SCALAR_TAGS:
            raise _tag_error(tag, "scalar", path, event.start_mark, found)
        fits = {f"{_TAG}float": (f"{_TAG}float", f"{_TAG}int")}.get(tag, (tag,))
        if explicit and tag != f"{_TAG}str" and implicit_tag not in fits:
            raise YamlInputError(f"is not a valid {_short(tag)} value; quote it (or drop the tag) for text",
                                 path, event.start_mark, found)
        if tag == f"{_TAG}int":
            if len(text) > MAX_INT_CHARS:
                raise YamlInputError(f"an integer written with more than {MAX_INT_CHARS} characters is refused "
                                     f"(this one has {len(text)}); quote it for text", path, event.start_mark, found)
            return self.loader.construct_yaml_int(yaml.ScalarNode(tag, text))
        if tag == f"{_TAG}float":
            return self.loader.construct_yaml_float(yaml.ScalarNode(tag, text))
        if tag == f"{_TAG}bool":
            return self.loader.construct_yaml_bool(yaml.ScalarNode(tag, text))
        if tag == f"{_TAG}null":
            return None
        return text  # str, timestamp (kept as written), and YAML 1.1's `=` and `<<` as plain values


def _tag_error(tag: str, kind: str, path: FieldPath, mark: Any, found: str) -> YamlInputError:
    if tag in _SCALAR_TAGS or tag in (f"{_TAG}seq", f"{_TAG}map"):
        return YamlInputError(f"tag {_short(tag)} cannot be used on a {kind}", path, mark, found)
    return YamlInputError(f"tag {_short(tag)} is not supported: an Experiment holds plain text, numbers, booleans, "
                          f"null, lists and mappings; allowed tags: {_ALLOWED_TAGS}", path, mark, found)


def _kind(event: Any) -> str:
    return "list" if isinstance(event, yaml.SequenceStartEvent) else "mapping"


def _short(tag: str | None) -> str:
    tag = tag or "!"
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


@dataclass(frozen=True)
class _Mark:
    line: int  # 0-based, as yaml.Mark
    column: int


def _reader_error(exc: yaml.reader.ReaderError, text: str) -> YamlInputError:
    """A character YAML does not allow (a control character), located by line and column."""
    before = text.encode("utf-8")[:exc.position].decode("utf-8", "ignore") if _POSITION_IN_BYTES else text[:exc.position]
    mark = _Mark(before.count("\n"), len(before) - (before.rfind("\n") + 1))
    character = f" (#x{exc.character:04x})" if isinstance(exc.character, int) else ""
    return YamlInputError(f"is not valid YAML: {exc.reason}{character}", (), mark)


def _syntax_error(exc: yaml.MarkedYAMLError) -> YamlInputError:
    # libyaml puts a newline inside some problems ("exceeded maximum nesting depth\n  in ..."): one line here.
    reason = " ".join(" ".join(p.split()) for p in (exc.context, exc.problem) if p)
    return YamlInputError(f"is not valid YAML: {reason}", (), exc.problem_mark or exc.context_mark)


def load_yaml_documents(text: str, max_nodes: int = MAX_YAML_NODES) -> list[Any]:
    """Every document of `text` as plain data (see the module docstring); `YamlInputError` otherwise.

    `YamlDuplicateKeyError` for a key given twice, `YamlBombError` for a text of more than
    `max_nodes` values (documents and aliases expanded) or a recursive one; both are YamlInputErrors.
    """
    try:
        loader = _BaseLoader(text)
    except yaml.reader.ReaderError as exc:  # PyYAML's own reader checks every character up front
        raise _reader_error(exc, text) from None
    try:
        return _Builder(loader, text, max_nodes).run()
    finally:
        loader.dispose()


def source_line(text: str, line: int | None) -> str | None:
    """Line `line` (1-based) of `text`, stripped; None when there is no such line."""
    if line is None:
        return None
    lines = text.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else None

