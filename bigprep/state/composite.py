"""Many states as one: named members, each fed one column of a chunk or the chunk.

An operation's reduction is usually a ``Fields``: the nulls of every column, a
statistic per (column, strategy), the fill summaries... It obeys the protocol
itself, member by member, so the engine treats it like any other state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .protocol import StateBase, decode, register


@dataclass
class Member:
    state: object
    column: str | None = None  # None: the member takes the whole chunk


def _example() -> Fields:
    from .moments import Moments
    from .quantile import MedianState
    from .runs import NullCounts

    return Fields({"x:mean": Member(Moments(), "x"), "x:median": Member(MedianState(), "x"),
                   "nulls": Member(NullCounts())}, ("x",))


@register("fields", example=_example)
@dataclass
class Fields(StateBase):
    """Named member states; ``reads`` are the columns a pass must read.

    >>> import polars as pl
    >>> from bigprep.state.moments import Moments
    >>> f = Fields({"x:mean": Member(Moments(), "x")})
    >>> f.update(_Chunk(pl.DataFrame({"x": [1.0, 3.0]}))).result()
    {'x:mean': 2.0}
    """

    CHUNK = "chunk"
    members: dict = field(default_factory=dict)  # name -> Member
    extra_reads: tuple = ()  # columns the chunk members need

    @property
    def reads(self) -> list[str]:
        columns = [m.column for m in self.members.values() if m.column is not None]
        return list(dict.fromkeys([*self.extra_reads, *columns]))

    def __getitem__(self, name: str):
        return self.members[name].state

    def __contains__(self, name: str) -> bool:
        return name in self.members

    def empty(self) -> Fields:
        return Fields({k: Member(m.state.empty(), m.column) for k, m in self.members.items()},
                      self.extra_reads)

    def update(self, chunk) -> Fields:
        for m in self.members.values():
            m.state.update(chunk if m.column is None else chunk.frame[m.column])
        return self

    def merge(self, other: Fields) -> Fields:
        names = dict.fromkeys([*self.members, *other.members])
        out = {}
        for name in names:
            a, b = self.members.get(name), other.members.get(name)
            if a is None or b is None:  # one side only: still a new state (merge with empty)
                one = a or b
                out[name] = Member(one.state.merge(one.state.empty()), one.column)
            else:
                out[name] = Member(a.state.merge(b.state), a.column)
        return Fields(out, self.extra_reads or other.extra_reads)

    def result(self) -> dict:
        return {k: m.state.result() for k, m in self.members.items()}

    # -- the multi-pass driver's hooks ------------------------------------------------
    def finish(self) -> Fields:
        return Fields({k: Member(m.state.finish(), m.column) for k, m in self.members.items()},
                      self.extra_reads)

    def next_pass(self) -> Fields | None:
        """The members that need another pass (column members only read again)."""
        pending = {k: Member(follow, m.column) for k, m in self.members.items()
                   if (follow := m.state.next_pass()) is not None}
        return Fields(pending) if pending else None

    def with_pass(self, done: Fields) -> Fields:
        return Fields({**self.members, **done.members}, self.extra_reads)

    @property
    def PAYLOAD_EXACT(self) -> bool:
        return all(getattr(m.state, "PAYLOAD_EXACT", True) for m in self.members.values())

    def canonical(self):
        return {k: getattr(m.state, "canonical", m.state.result)() for k, m in
                self.members.items()}

    def to_payload(self, sidecar: dict, key: str) -> dict:
        return {k: {"kind": m.state.KIND, "column": m.column,
                    "data": m.state.to_payload(sidecar, f"{key}/{k}")}
                for k, m in self.members.items()}

    @classmethod
    def from_payload(cls, data: dict, sidecar: dict, key: str) -> Fields:
        return cls({k: Member(decode(e["kind"], e["data"], sidecar, f"{key}/{k}"), e["column"])
                    for k, e in data.items()})


@dataclass
class _Chunk:  # for the example above; the engine passes io.dataset.Chunk
    frame: object
