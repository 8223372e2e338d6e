"""Reading the files a user hands us (experiments, Rally tasks) without trusting them.

An experiment file may come from anyone. Before anything is parsed: a regular file (not
a device, a FIFO or a directory), at most MAX_FILE_BYTES. While parsing: PyYAML's safe
constructors only (no Python-object tags), no duplicate keys (YAML says they are an
error; PyYAML silently keeps the last one), nesting at most MAX_DEPTH deep, at most
MAX_ALIASES alias uses and at most MAX_NODES nodes once aliases are expanded (the
"billion laughs" document is a few hundred bytes). Every failure is a YamlError with a
line number where there is one, for the caller's one-line error.

PyYAML only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 256
MAX_NODES = 100_000


class YamlError(ValueError):
    """Why a file cannot be read as a document; `where` is '' or 'line N'."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where, self.message = where, message


def read_text(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The text of a regular file of at most `max_bytes` (YamlError otherwise; OSError
    when it cannot be opened)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO: no wait
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise YamlError("", "not a regular file")
        if st.st_size > max_bytes:
            raise YamlError("", f"{st.st_size} bytes: larger than the limit of {max_bytes}")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise YamlError("", f"larger than the limit of {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise YamlError("", f"not UTF-8 text (byte {e.start})") from None


def _line(node: Node | None) -> str:
    return f"line {node.start_mark.line + 1}" if node is not None and node.start_mark else ""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with the limits above."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlError(_line_of(self.peek_event()),
                                f"more than {MAX_ALIASES} aliases")
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlError(_line_of(self.peek_event()),
                                f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        raise YamlError(_line(key_node), f"duplicate key {key!r}")
                    seen.add(key)
                except TypeError:
                    pass  # an unhashable key: PyYAML's own error follows
        return super().construct_mapping(node, deep)


def _line_of(event: Any) -> str:
    mark = getattr(event, "start_mark", None)
    return f"line {mark.line + 1}" if mark else ""


def _expanded_size(root: Node) -> int:
    """Nodes of the document with every alias expanded, counted without expanding
    (an alias is the same Node object again: memoised by identity)."""
    sizes: dict[int, int] = {}
    # iterative post-order: a deep document must not exhaust Python's stack
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in children), MAX_NODES + 1)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def load(text: str) -> Any:
    """The one document in `text`, under the limits (YamlError on any problem)."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_NODES:
            raise YamlError("", f"more than {MAX_NODES} nodes once its aliases are "
                            "expanded")
        return loader.construct_document(node)
    except YamlError:
        raise
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise YamlError(where, f"invalid YAML: {getattr(e, 'problem', None) or e}") from None
    except RecursionError:
        raise YamlError("", "nested too deeply") from None
    finally:
        loader.dispose()
