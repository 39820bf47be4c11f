"""The configuration document on disk: one YAML file, validated, revisioned, replaced atomically.

The whole device configuration is one document (a pydantic model owned by the caller) so that it
can be exported, diffed, versioned and imported as a unit. On disk it is YAML, because installers
edit it by hand; the file is a mapping with a ``revision`` key followed by the model's fields.

``revision`` is bumped by every save. Writers pass the revision they loaded
(``expected_revision``), so two administrators editing at once cannot silently overwrite each
other: the second save gets :class:`RevisionConflict` and must reload. Every save keeps the
previous file as ``<name>.bak`` (one level of undo for a bad edit) and goes through
:func:`~camio.store.atomic.atomic_write_bytes`, so a crash never leaves a torn file.

Errors are reported as ``path.to.field: message`` lines (:func:`format_validation_error`), the
same format the API uses for its 422 answers, so a person can find the offending line.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import pydantic
import yaml

from camio.store.atomic import atomic_write_bytes

try:  # libyaml is much faster on large documents; the pure-Python loader is the fallback.
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "REVISION_KEY",
    "ConfigFileError",
    "ConfigStore",
    "RevisionConflict",
    "dump_yaml",
    "format_validation_error",
    "load_yaml_text",
]

M = TypeVar("M", bound=pydantic.BaseModel)

REVISION_KEY = "revision"
"""Top-level key holding the document revision; not part of the model."""

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
"""Larger documents are refused: a real configuration is a few kB, and YAML parsing is slow."""

_MAX_VALUES = 1_000_000
_MAX_DEPTH = 64

_FILE_HEADER = (
    "# camio configuration document. camio rewrites this file on every change from the web\n"
    "# interface or the API: comments are not kept. 'revision' counts saves; leave it as is.\n"
)


class ConfigFileError(ValueError):
    """A configuration document that cannot be used, with one message per problem.

    ``messages`` are ``location: message`` lines, e.g.
    ``inputs.0.debounce_on_ms: Input should be greater than or equal to 0``, or
    ``line 3, column 5: ...`` for YAML syntax errors.
    """

    def __init__(self, messages: list[str], source: str | None = None) -> None:
        self.messages = list(messages)
        self.source = source
        head = f"{source}: invalid configuration" if source else "invalid configuration"
        super().__init__(head + "".join(f"\n  {message}" for message in self.messages))


class RevisionConflict(Exception):
    """The document on disk changed since the caller loaded it (someone else saved)."""

    def __init__(self, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"configuration revision is {actual}, not {expected}: it was changed meanwhile;"
            " reload it and apply the change again"
        )


def format_validation_error(exc: pydantic.ValidationError, prefix: str = "") -> list[str]:
    """One ``a.b.0.c: message`` line per error of ``exc``, in pydantic's order, no duplicates.

    ``prefix`` is put in front of every location (``"body"`` gives ``body.inputs.0.name: …``);
    an error about the whole object (a model validator) is located at ``prefix``, or at
    ``(document)`` without one. pydantic's ``Value error, `` preamble for a ``ValueError`` raised
    by a validator is dropped: the text after it is the message written for humans.
    """
    base = prefix.strip(".")
    lines: list[str] = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"])
        where = ".".join(part for part in (base, location) if part) or "(document)"
        message = str(error["msg"]).removeprefix("Value error, ")
        line = f"{where}: {message}"
        if line not in lines:
            lines.append(line)
    return lines


class _Loader(_BaseLoader):
    """Safe loader that refuses duplicate keys.

    Plain YAML loaders keep the last of two equal keys, so a setting pasted twice in a
    hand-edited file silently cancels the first one; here it is an error with its line number.
    Merge keys (``<<: *defaults``) still override as YAML specifies.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                key_node, yaml.ScalarNode
            ):
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_error_message(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
        if mark is not None:
            return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
        return problem
    return f"YAML error: {exc}"


def _check_shape(value: object) -> None:
    """Refuse alias bombs and absurd nesting before pydantic walks the data.

    YAML aliases share one object between many places; a few lines of ``*a`` references can
    stand for billions of values (or a cycle), which validation would then expand.
    """
    count = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > _MAX_VALUES:
            raise ConfigFileError(
                [f"the document expands to more than {_MAX_VALUES} values (YAML aliases?)"]
            )
        if depth > _MAX_DEPTH:
            raise ConfigFileError([f"the document is nested more than {_MAX_DEPTH} levels deep"])
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _parse(text: str) -> tuple[dict[str, Any], int | None]:
    """YAML text to (fields without the revision, revision or ``None`` when absent)."""
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise ConfigFileError([f"the document is larger than {MAX_DOCUMENT_BYTES} bytes"])
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigFileError([_yaml_error_message(exc)]) from exc
    except RecursionError as exc:
        raise ConfigFileError(["the document is nested too deeply"]) from exc
    if data is None:
        raise ConfigFileError(["the document is empty: expected a mapping of settings"])
    if not isinstance(data, dict):
        raise ConfigFileError(
            [
                "the document must be a mapping of settings (key: value lines) at the top"
                f" level, not a {type(data).__name__}"
            ]
        )
    _check_shape(data)
    fields = dict(data)
    revision: int | None = None
    if REVISION_KEY in fields:
        raw = fields.pop(REVISION_KEY)
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise ConfigFileError([f"{REVISION_KEY}: must be a whole number >= 0, got {raw!r}"])
        revision = raw
    return fields, revision


def _validate(fields: dict[str, Any], model: type[M]) -> M:
    try:
        return model.model_validate(fields)
    except pydantic.ValidationError as exc:
        raise ConfigFileError(format_validation_error(exc)) from exc


def load_yaml_text(text: str, model: type[M]) -> M:
    """Parse and validate a YAML document (``camio config import`` / ``validate``).

    A top-level ``revision`` key, as written by :func:`dump_yaml` or found in a saved file, is
    accepted and ignored. Raises :class:`ConfigFileError` listing every problem.
    """
    fields, _ = _parse(text)
    return _validate(fields, model)


def dump_yaml(doc: pydantic.BaseModel, revision: int | None = None) -> str:
    """The YAML text of ``doc`` in field order (``camio config export``).

    Values are dumped in pydantic's JSON mode (enums as values, durations as numbers…), so the
    text reads back to an equal model with :func:`load_yaml_text`. With ``revision`` it comes
    first, as in the stored file.
    """
    data: dict[str, Any] = doc.model_dump(mode="json")
    if revision is not None:
        data = {REVISION_KEY: revision, **data}
    return yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


def _read_text(path: Path) -> str:
    with path.open("rb") as handle:
        raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ConfigFileError(
            [f"the document is larger than {MAX_DOCUMENT_BYTES} bytes"], source=str(path)
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(
            [f"byte {exc.start}: the file is not UTF-8 text"], source=str(path)
        ) from exc


class ConfigStore(Generic[M]):
    """The configuration file at ``path`` holding a document of type ``model``.

    Saves are serialised within the process (a lock) and across processes (``flock`` on
    ``<name>.lock`` next to the file), so the daemon and a ``camio config import`` cannot both
    pass the revision check and both write.
    """

    def __init__(self, path: Path, model: type[M]) -> None:
        if REVISION_KEY in model.model_fields:
            raise ValueError(f"{model.__name__} has a field named {REVISION_KEY!r}, reserved")
        self.path = path
        self.model = model
        self._lock = threading.Lock()

    @property
    def backup_path(self) -> Path:
        """Where the previous version is kept: ``<name>.bak``."""
        return self.path.with_name(self.path.name + ".bak")

    @property
    def lock_path(self) -> Path:
        """The lock file serialising writers across processes: ``<name>.lock``."""
        return self.path.with_name(self.path.name + ".lock")

    def load(self) -> tuple[M, int]:
        """The document and its revision (0 for a hand-written file without one).

        Raises ``FileNotFoundError`` when there is no file yet (the caller then saves its
        defaults) and :class:`ConfigFileError` when it is not a valid document.
        """
        text = _read_text(self.path)
        try:
            fields, revision = _parse(text)
            doc = _validate(fields, self.model)
        except ConfigFileError as exc:
            raise ConfigFileError(exc.messages, source=str(self.path)) from exc
        return doc, revision or 0

    def save(self, doc: M, expected_revision: int | None = None) -> int:
        """Write ``doc`` as the next revision and return that revision.

        With ``expected_revision`` the save only happens if the file is still at that revision
        (``0`` = "there is no file yet"), else :class:`RevisionConflict`. The document is
        validated again before writing (it may have been built with ``model_construct``), so
        what is saved always loads. If the current file cannot even be parsed, its revision is
        unknown: the save proceeds (the broken file goes to ``.bak``), numbering after
        ``expected_revision``.
        """
        try:
            self.model.model_validate(doc.model_dump(mode="json"))
        except pydantic.ValidationError as exc:
            raise ConfigFileError(format_validation_error(exc), source=str(self.path)) from exc
        with self._lock, self._file_lock():
            try:
                current: bytes | None = self.path.read_bytes()
                mode = stat.S_IMODE(self.path.stat().st_mode)
            except FileNotFoundError:
                current, mode = None, 0o600
            actual = 0 if current is None else _peek_revision(current)
            if expected_revision is not None and actual is not None and actual != expected_revision:
                raise RevisionConflict(expected_revision, actual)
            revision = (actual if actual is not None else (expected_revision or 0)) + 1
            text = _FILE_HEADER + dump_yaml(doc, revision=revision)
            if current is not None:
                atomic_write_bytes(self.backup_path, current, mode)
            atomic_write_bytes(self.path, text.encode("utf-8"), mode)
        return revision

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _peek_revision(raw: bytes) -> int | None:
    """The revision of a stored file, 0 if it has none, ``None`` if it cannot be parsed."""
    try:
        fields = yaml.load(raw.decode("utf-8-sig"), Loader=_BaseLoader)  # a safe loader
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(fields, dict):
        return None
    revision = fields.get(REVISION_KEY, 0)
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        return None
    return revision
