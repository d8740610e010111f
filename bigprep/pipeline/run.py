"""Run a pipeline: only the partitions the ledger has not done, every step fused.

One run, in order, under the state folder's lock:

1. list the inputs and ask the ledger which partitions are new (by content);
2. fit each stateful step on the new partitions, merged into the state the last run
   saved; a step fits on the chunks as the steps before it leave them (applied in
   memory: no intermediate files);
3. apply every step in one read and one write per partition, published into
   ``output`` beside the earlier outputs (a dataset commit);
4. save the states under the next generation's names, then the ledger naming them
   (written last: the commit), then remove the previous generation.

A run killed anywhere leaves the previous ledger naming the previous states; the
next run redoes the same partitions from those states and ends with the same bytes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from ..engine.executor import Executor
from ..engine.passes import Chained, write_each
from ..errors import BigprepError
from ..io.commit import Commit, run_key
from ..io.dataset import open_dataset
from ..io.lock import locked
from ..io.sink import check_out_dir
from ..io.statefile import now
from ..io.storage import is_remote
from .ledger import Ledger
from .spec import Spec
from .steps import runner, save_state, view


@dataclass
class RunReport:
    pipeline: str
    status: str  # "done", "nothing new", "dry run"
    processed: list = field(default_factory=list)  # relative paths
    rows: int = 0
    seconds: float = 0.0
    skipped: dict = field(default_factory=dict)  # why -> relative paths
    steps: list = field(default_factory=list)  # per step: kind, what it did
    files: list = field(default_factory=list)  # output files written
    plan: list = field(default_factory=list)  # dry run: what would happen

    def to_json(self) -> dict:
        return {"pipeline": self.pipeline, "status": self.status,
                "partitions": len(self.processed), "rows": self.rows,
                "seconds": round(self.seconds, 3), "processed": self.processed,
                "skipped": self.skipped, "steps": self.steps}


def state_folder(spec: Spec) -> str:
    """The local folder holding the ledger, the states and the lock."""
    if is_remote(spec.state):
        raise BigprepError(f"`state` {spec.state}: a pipeline's state folder is local (it "
                           "holds the lock and the ledger); inputs and output may be URLs.")
    return spec.state


def run_pipeline(spec: Spec, *, full: bool = False, dry_run: bool = False,
                 executor: Executor | None = None, storage_options: dict | None = None
                 ) -> RunReport:
    """Process the partitions of ``spec.inputs`` the ledger has not done (all of them,
    from scratch, with ``full``); ``dry_run`` says what would be done and does nothing."""
    started = time.monotonic()
    folder = state_folder(spec)
    executor = executor or Executor()
    options = dict(storage_options or {})
    with locked(None if dry_run else os.path.join(folder, "pipeline"), "state"):
        ledger = Ledger.load(folder, spec.name)
        if not dry_run:  # what a killed run left: states the ledger does not name
            _remove_unnamed(folder, set(ledger.states.values()))
        everything = open_dataset(spec.inputs, options)
        given = [i for i in spec.inputs if not is_remote(i) and os.path.isdir(i)]
        check_out_dir(spec.output, everything.paths, everything.root, given)
        kinds = ledger.classify(everything.partitions, spec.version)
        report = RunReport(spec.name, "done")
        if full:
            todo = list(everything.partitions)
        else:
            _refuse_changed_spec(spec, ledger)
            todo = kinds["new"]
            report.skipped = {k: [p.rel for p in v] for k, v in kinds.items()
                              if k in ("changed", "failed", "stale") and v}
        runners = [runner(spec, step) for step in spec.steps]
        if dry_run:
            report.status, report.processed = "dry run", [p.rel for p in todo]
            report.plan = _plan_text(spec, runners, todo, ledger, full)
            return report
        if not todo:
            report.status = "nothing new"
            _log_run(ledger, folder, report, started)
            return report
        dataset = open_dataset([p.path for p in todo], options, root=everything.root)
        commit = Commit(spec.output, "overwrite" if full else "add",
                        run_key(f"bigprep run {spec.name}", {"spec": spec.version}, dataset),
                        f"bigprep run {spec.name}", options)
        commit.check()
        with commit.holding():
            transforms, states = [], {}
            for r in runners:
                upstream = Chained(transforms) if transforms else None
                here = view(dataset, transforms[-1].schema if transforms else None)
                prior = None
                if r.stateful and not full and r.step.key in ledger.states:
                    prior = r.load(os.path.join(folder, ledger.states[r.step.key]))
                fitted = r.fit(here, executor, prior, upstream)
                if r.stateful:
                    states[r.step.key] = (r, fitted)
                transforms.append(r.transformer(fitted, here))
                report.steps.append({"step": r.step.label, "kind": r.step.kind,
                                     "updated" if prior is not None else "fitted":
                                     r.stateful})
            report.files = write_each(dataset, commit, Chained(transforms), executor,
                                      chunk_rows=spec.chunk_rows, label=spec.name,
                                      compression=spec.compression)
        names = _save_states(ledger, folder, spec, states, todo, full)
        report.processed = [p.rel for p in todo]
        report.rows = dataset.rows
        _log_run(ledger, folder, report, started)  # the ledger, last: the commit
        _remove_unnamed(folder, set(names))
    report.seconds = time.monotonic() - started
    return report


def _refuse_changed_spec(spec: Spec, ledger: Ledger) -> None:
    if ledger.spec_version is not None and ledger.spec_version != spec.version:
        raise BigprepError(
            f"{spec.path}: the steps changed since the saved states were fitted (spec "
            f"version {ledger.spec_version}, now {spec.version}); merging new partitions "
            "into them would mix two definitions. Run with `full` to refit everything.")


def _save_states(ledger: Ledger, folder: str, spec: Spec, states: dict, todo, full: bool
                 ) -> list[str]:
    """Save the states under the next generation's names and record them (and the
    partitions done) in the ledger, not yet saved; the names."""
    generation = ledger.generation + 1
    os.makedirs(os.path.join(folder, "steps"), exist_ok=True)
    names = {}
    for key, (r, fitted) in states.items():
        names[key] = os.path.join("steps", f"{key}.g{generation}.json")
        save_state(os.path.join(folder, names[key]), r, fitted)
    if full:
        ledger.partitions = {}
    ledger.generation, ledger.spec_version, ledger.states = generation, spec.version, names
    ledger.record(todo, "done", generation, spec.version)
    return list(names.values())


def _remove_unnamed(folder: str, keep: set) -> None:
    """The states of earlier generations (and of a killed run), once the ledger names
    the new ones."""
    steps = os.path.join(folder, "steps")
    if not os.path.isdir(steps):
        return
    for name in os.listdir(steps):
        rel = os.path.join("steps", name)
        if not any(rel == k or rel.startswith(k + ".") for k in keep):
            os.remove(os.path.join(steps, name))


def _log_run(ledger: Ledger, folder: str, report: RunReport, started: float) -> None:
    report.seconds = time.monotonic() - started
    ledger.runs.append({"finished": now(), "status": report.status,
                        "partitions": len(report.processed), "rows": report.rows,
                        "seconds": round(report.seconds, 3)})
    os.makedirs(folder, exist_ok=True)
    ledger.save(folder)


def _plan_text(spec: Spec, runners, todo, ledger: Ledger, full: bool) -> list[str]:
    lines = [f"read {len(todo)} partition(s)" + (" (all: --full)" if full else " (new)")]
    for r in runners:
        if r.stateful:
            has = r.step.key in ledger.states and not full
            lines.append(f"{r.step.label}: {'update the saved state' if has else 'fit'} "
                         "with them")
        else:
            lines.append(f"{r.step.label}: apply")
    lines.append(f"write {len(todo)} file(s) into {spec.output} "
                 f"({'replacing it' if full else 'beside the earlier ones'})")
    lines.append(f"save the states and the ledger in {spec.state}")
    return lines
