"""The State protocol: what every fitted statistic is, and the registry of them.

A state summarises rows. ``update(chunk)`` folds one chunk in (and returns the
state); ``merge(other)`` returns a new state for the rows of both (associative,
an empty state is the identity, ``self`` holds the earlier rows); ``empty()`` is an
empty state configured like this one; ``result()`` is the finished value (None
when nothing was seen); ``to_payload`` / ``from_payload`` are the one codec (JSON
plus a sidecar of named byte strings for large arrays). A multi-pass statistic
returns the state of its next, narrower pass from ``next_pass()`` until it is done
(the one generic driver is ``engine.passes.reduce``).

Every state class is registered under a kind name with an example factory, and the
merge laws are tested by iterating ``REGISTRY`` (tests/test_state_laws.py), so a
new state cannot skip them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self, runtime_checkable


@runtime_checkable
class State(Protocol):
    CHUNK: ClassVar[str]  # what update() takes: see CHUNK_KINDS

    def update(self, chunk) -> Self: ...
    def merge(self, other: Self) -> Self: ...
    def empty(self) -> Self: ...
    def result(self) -> Any: ...
    def next_pass(self) -> Self | None: ...
    def finish(self) -> Self: ...
    def with_pass(self, done: Self) -> Self: ...
    def to_payload(self, sidecar: dict[str, bytes], key: str) -> dict: ...
    @classmethod
    def from_payload(cls, data: dict, sidecar: dict[str, bytes], key: str) -> Self: ...


CHUNK_KINDS = {
    # NaN counts as missing: the chunk loop makes it null before any state sees it
    "series": "one column of a chunk (pl.Series)",
    "chunk": "a whole chunk with its location (io.dataset.Chunk)",
    "terms": "term occurrences of a chunk's documents (TermChunk)",
    "predictions": "true and predicted values of a chunk (Predictions)",
}


class StateBase:
    """Defaults shared by the families: one pass, ``empty`` by construction."""

    CHUNK: ClassVar[str] = "series"

    def empty(self) -> Self:
        return type(self)()

    @classmethod
    def for_column(cls, dtype, bounds: tuple | None = None) -> Self:
        """An empty state for a column of ``dtype`` whose values lie in ``bounds``
        (min, max from the files' statistics, when known)."""
        return cls()

    def continuation(self) -> Self:
        """The empty state new rows are folded into before they merge into this one."""
        return self.empty()

    def compact(self) -> Self:
        """The state as kept once fitted: what later updates need (a median keeps only a
        window of values around it)."""
        return self

    def finish(self) -> Self:
        """After a pass: the state to keep (a multi-pass state may settle here)."""
        return self

    def next_pass(self) -> Self | None:
        """None when ``result()`` is ready; else the empty state of the next pass."""
        return None

    def with_pass(self, done: Self) -> Self:
        """This state once the pass ``next_pass()`` asked for has given ``done``."""
        return done


@dataclass(frozen=True)
class Registered:
    kind: str
    cls: type
    example: Callable[[], State]  # an empty state of this kind, as the law tests use it


REGISTRY: dict[str, Registered] = {}


def register(kind: str, example: Callable[[], State] | None = None):
    """Class decorator: put a state class in the registry under ``kind``."""
    def add(cls):
        if kind in REGISTRY:
            raise ValueError(f"state kind {kind!r} registered twice")
        if getattr(cls, "CHUNK", None) not in CHUNK_KINDS:
            raise ValueError(f"{cls.__name__}.CHUNK must be one of {sorted(CHUNK_KINDS)}")
        REGISTRY[kind] = Registered(kind, cls, example or cls)
        if "KIND" not in cls.__dict__:  # one class may serve several kinds: the first names it
            cls.KIND = kind
        return cls
    return add


@dataclass(frozen=True)
class Statistic:
    name: str  # the strategy name users write, e.g. "median"
    cls: type
    numeric_only: bool


STATISTICS: dict[str, Statistic] = {}


def statistic(name: str, *, numeric_only: bool):
    """Class decorator: a registered state that is also an imputation strategy (its
    ``exact()`` / ``result()`` is the fill value). This is all a new strategy needs."""
    def add(cls):
        STATISTICS[name] = Statistic(name, cls, numeric_only)
        return cls
    return add


def decode(kind: str, data: dict, sidecar: dict, key: str) -> State:
    """A state from its payload, by its registered kind."""
    return REGISTRY[kind].cls.from_payload(data, sidecar, key)
