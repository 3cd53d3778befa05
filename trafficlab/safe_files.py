"""Reading files a person handed in, without trusting them: the one place that opens them.

Grading, ``trafficlab apply -f`` and :func:`trafficlab.manifests.load_manifests` read files
through here. A file is read only when it is a regular file reached without following any
symbolic link, is at most :data:`MAX_BYTES` long and has a printable name; anything else is
refused with an :class:`UnsafeFileError` that names the file and says what to do. YAML is
parsed by :func:`load_yaml_all`, which bounds alias expansion ("billion laughs") and refuses
duplicate mapping keys with their line.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from trafficlab._errors import UnsafeFileError

__all__ = ["MAX_ALIAS_NODES", "MAX_BYTES", "UnsafeFileError", "YamlLimitError", "check_name",
           "list_files", "load_yaml", "load_yaml_all", "read_bytes", "read_text"]

MAX_BYTES = 1024 * 1024
# Nodes that aliases may add when a document is expanded, beyond the nodes written out:
# a real manifest uses a handful of aliases; a "billion laughs" file needs billions.
MAX_ALIAS_NODES = 100_000
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class YamlLimitError(yaml.YAMLError):
    """A YAML text breaks a parsing rule (duplicate key, alias expansion); carries the line."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


def check_name(name: str) -> None:
    """Refuse a name with control characters (they hide or rewrite what a terminal shows)."""
    if any(ord(c) < 32 or ord(c) == 127 or 0x80 <= ord(c) < 0xA0 for c in name):
        raise UnsafeFileError(repr(name), "the name holds control characters",
                              "rename the file with letters, digits, '-', '_' and '.' only")


def _refusal(name: str, err: OSError, what: str = "file") -> UnsafeFileError:
    if err.errno in (errno.ELOOP, errno.ENOTDIR):
        return UnsafeFileError(name, f"the {what} is a symbolic link (or sits behind one), "
                               "which is never followed",
                               f"replace the link with a real {what} holding your own work")
    if err.errno == errno.ENOENT:
        return UnsafeFileError(name, f"the {what} does not exist", f"create the {what}")
    return UnsafeFileError(name, f"the {what} cannot be opened ({err.strerror})",
                           f"make it a readable {what}")


def _open_dir(path: Path) -> int:
    """An fd of the folder ``path``, refusing a folder that is itself a symbolic link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        raise _refusal(str(path), err, "folder") from err
    return fd


def _open_in(root: Path | None, name: str) -> int:
    """Open ``name`` without following a link: below ``root`` component by component (the
    folder itself not a link either), or as a path whose last component is not a link."""
    parts = Path(name).parts
    for part in parts:
        check_name(part)
    if root is None:
        try:
            return os.open(name, _FLAGS)
        except OSError as err:
            raise _refusal(name, err) from err
    if not parts or Path(name).is_absolute() or ".." in parts:
        raise UnsafeFileError(name, "the name leaves the submission folder",
                              "name the file relative to the folder")
    dir_fd = _open_dir(root)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=dir_fd)
            except OSError as err:
                raise _refusal(name, err, "folder") from err
            os.close(dir_fd)
            dir_fd = nxt
        try:
            return os.open(parts[-1], _FLAGS, dir_fd=dir_fd)
        except OSError as err:
            raise _refusal(name, err) from err
    finally:
        os.close(dir_fd)


def read_bytes(name: str | os.PathLike[str], root: Path | None = None, *,
               limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file, at most ``limit`` of them, no symbolic link followed.

    With ``root``, ``name`` is relative to it and neither the folder nor any part of the way
    may be a link; without, the last component of the path and its folder must not be one.
    """
    shown = os.fspath(name)
    fd = _open_in(root, shown)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a named pipe (FIFO)"
                    if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode)
                    else "a device")
            raise UnsafeFileError(shown, f"the file is {kind}, not a regular file",
                                  "submit a plain text file")
        if info.st_size > limit:
            raise UnsafeFileError(shown, f"the file is {info.st_size} bytes, over the limit of "
                                  f"{limit}", "submit only the manifest, well under 1 MiB")
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        got = 0
        # Read at most limit+1 bytes: a file that grows while read is still caught.
        while got <= limit:
            chunk = os.read(fd, limit + 1 - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:
            raise UnsafeFileError(shown, f"the file is over the limit of {limit} bytes",
                                  "submit only the manifest, well under 1 MiB")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(name: str | os.PathLike[str], root: Path | None = None, *,
              limit: int = MAX_BYTES) -> str:
    """:func:`read_bytes` decoded as UTF-8 (refused, with the reason, when it is not)."""
    data = read_bytes(name, root, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeFileError(os.fspath(name), f"the file is not UTF-8 text (byte {exc.start})",
                              "save it as UTF-8 text") from exc


def list_files(folder: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    """Files with one of ``suffixes`` under ``folder``, in name order, links never entered.

    Symbolic links (to files or folders) are yielded too, so reading them is refused with
    a message instead of their being silently skipped.
    """
    fd = _open_dir(folder)
    os.close(fd)
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from list_files(path, suffixes)
        elif path.suffix in suffixes:
            yield path


# -- YAML ------------------------------------------------------------------------------
class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and documents whose aliases expand too far."""

    def compose_document(self) -> Node | None:
        node: Node | None = super().compose_document()
        if node is not None:
            _check_expansion(node)
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            try:
                first = seen.get(key)
            except TypeError:
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise YamlLimitError(f"line {line}: duplicate key {key!r} in a mapping (first "
                                     f"on line {first})", key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: Node) -> None:
    """Refuse a document whose aliases would expand to more than MAX_ALIAS_NODES extra nodes.

    Sizes are computed once per node (aliases share nodes), so this is linear in the text.
    """
    size: dict[int, int] = {}
    written = 0
    stack: list[tuple[Node, bool]] = [(root, False)]
    active: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            active.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            continue
        if key in size:
            continue
        if key in active:
            raise YamlLimitError("an alias refers to the node that contains it (a loop)",
                                 node.start_mark)
        active.add(key)
        written += 1
        stack.append((node, True))
        for child in children:
            if id(child) in active:
                raise YamlLimitError(f"line {child.start_mark.line + 1}: an alias refers to a "
                                     "node that contains it (a loop)", child.start_mark)
            if id(child) not in size:
                stack.append((child, False))
    total = size.get(id(root), 0)
    if total - written > MAX_ALIAS_NODES:
        raise YamlLimitError(f"its aliases expand to {total} nodes from {written} written; "
                             f"at most {MAX_ALIAS_NODES} more are allowed (a 'billion laughs' "
                             "file?)", root.start_mark)


def load_yaml_all(text: str) -> list[Any]:
    """Every document of a YAML (or JSON) text, with duplicate keys and alias bombs refused.

    Raises ``yaml.YAMLError`` (a :class:`YamlLimitError` for the two rules) with a
    ``problem_mark`` giving the line.
    """
    return list(yaml.load_all(text, Loader=_BoundedLoader))  # a SafeLoader subclass


def load_yaml(text: str) -> Any:
    """The single document of a YAML text, with the rules of :func:`load_yaml_all`."""
    return yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader subclass
