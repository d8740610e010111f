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
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..engine.executor import Executor
from ..engine.passes import Chained, write_each
from ..errors import BigprepError
from ..io.commit import Commit, run_key
from ..io.dataset import (
    Dataset,
    Partition,
    SchemaDrift,
    fingerprint,
    open_dataset,
    relative,
    resolve_paths,
)
from ..io.lock import locked
from ..io.sink import check_out_dir, sweep_temporary
from ..io.statefile import now
from ..io.storage import is_remote
from ..ops.base import fit_together
from .ledger import Ledger, belongs, content_key
from .remote import working_copy
from .spec import Spec
from .steps import runner, view


@dataclass
class RunReport:
    pipeline: str
    status: str  # "done", "nothing new", "dry run", "partly done", "failed"
    processed: list = field(default_factory=list)  # relative paths
    rows: int = 0
    seconds: float = 0.0
    skipped: dict = field(default_factory=dict)  # why -> relative paths
    failed: dict = field(default_factory=dict)  # relative path -> error (keep_going)
    reapplied: list = field(default_factory=list)  # changed partitions, outputs rewritten
    steps: list = field(default_factory=list)  # per step: kind, what it did
    files: list = field(default_factory=list)  # output files written
    plan: list = field(default_factory=list)  # dry run: what would happen

    def to_json(self) -> dict:
        return {"pipeline": self.pipeline, "status": self.status,
                "partitions": len(self.processed), "rows": self.rows,
                "seconds": round(self.seconds, 3), "processed": self.processed,
                "failed": self.failed, "reapplied": self.reapplied,
                "skipped": self.skipped, "steps": self.steps}


@contextmanager
def state_folder(spec: Spec, options: dict, write: bool = True) -> Iterator[str]:
    """The local folder holding the ledger, the states and the lock: ``state`` itself,
    or a working copy of a URL's, synced back when the run ends (see remote.py)."""
    if not is_remote(spec.state):
        yield spec.state
        return
    with working_copy(spec.state, options, write=write) as folder:
        yield folder


def list_inputs(spec: Spec, ledger: Ledger, options: dict, keep_going: bool,
                retry_failed: bool = False) -> tuple[Dataset | None, dict]:
    """Every input partition whose footer can be read and agrees with the others'
    schema; ({content key: (partition, error)} of those that cannot). A partition the
    ledger already records as failed is set aside again (unless retried); another one
    only with ``keep_going`` (else its error stops the run)."""
    files, root = resolve_paths(spec.inputs, options)
    files = list(files)
    unlisted: dict = {}
    while files:
        try:
            return open_dataset(files, options, root=root), unlisted
        except BigprepError as err:
            if err.partition not in files:
                raise
            bad = _unlisted(err.partition, root, options)
            if isinstance(err, SchemaDrift) and _first_is_odd(err, bad, files, ledger,
                                                              root, options):
                bad = _unlisted(err.first, root, options)
            status = ledger.status(bad)
            if status == "done" or not (keep_going or status == "failed" and not retry_failed):
                raise  # a partition done before is never set aside
            unlisted[content_key(bad)] = (bad, str(err))
            files.remove(bad.path)
    return None, unlisted


def _unlisted(path: str, root: str, options: dict) -> Partition:
    """A partition known only by its path and content (its footer cannot be used)."""
    size, print_ = fingerprint(path, options)
    return Partition(path, relative(path, root), 0, (), size=size, fingerprint=print_)


def _first_is_odd(err: SchemaDrift, named: Partition, files: list, ledger: Ledger,
                  root: str, options: dict) -> bool:
    """Whether the first file, not the one the drift names, differs from the partitions
    done before (a backfill with an older name): judged by a done partition's schema."""
    if ledger.status(_unlisted(err.first, root, options)) == "done":
        return False
    if ledger.status(named) == "done":
        return True
    for path in files:  # a done partition to compare with, if any
        if path not in (err.first, err.partition) and \
                ledger.status(_unlisted(path, root, options)) == "done":
            try:
                open_dataset([path, err.first], options, root=root)
            except SchemaDrift:
                return True
            return False
    return False


def run_pipeline(spec: Spec, *, full: bool = False, dry_run: bool = False,
                 keep_going: bool = False, retry_failed: bool = False,
                 reprocess_changed: bool = False, executor: Executor | None = None,
                 storage_options: dict | None = None) -> RunReport:
    """Process the partitions of ``spec.inputs`` the ledger has not done.

    ``full``: all of them, from scratch. ``retry_failed``: only those recorded as
    failed. ``reprocess_changed``: also rewrite the outputs of partitions whose content
    changed, with the states as they are (they do not learn from them). ``keep_going``:
    a partition that fails is recorded as failed and the others go on. ``dry_run``
    says what would be done and does nothing.
    """
    started = time.monotonic()
    report = RunReport(spec.name, "done")
    options = dict(storage_options or {})
    with state_folder(spec, options, write=not dry_run) as folder, \
            locked(None if dry_run else os.path.join(folder, "pipeline"), "state"):
        ledger = Ledger.load(folder, spec.name)
        if not dry_run and os.path.isdir(folder):
            # what a killed run left: states the ledger does not name, temporary files
            _remove_unnamed(folder, set(ledger.states.values()))
            sweep_temporary(folder)
        try:
            _run(spec, ledger, folder, report, full=full, dry_run=dry_run,
                 keep_going=keep_going, retry_failed=retry_failed,
                 reprocess_changed=reprocess_changed, executor=executor or Executor(),
                 options=options)
        except BigprepError as err:
            if not dry_run:  # the ledger as it is: the previous one, or the first phase's
                report.status = "failed"
                _log_run(ledger, folder, report, started, error=str(err))
            raise
        if report.status != "dry run":
            _log_run(ledger, folder, report, started)  # the ledger, last: the commit
            _remove_unnamed(folder, set(ledger.states.values()))
    report.seconds = time.monotonic() - started
    return report


def _run(spec: Spec, ledger: Ledger, folder: str, report: RunReport, *, full, dry_run,
         keep_going, retry_failed, reprocess_changed, executor, options) -> None:
    """The run under the lock: the ledger and ``report`` updated, the ledger not saved."""
    everything, unlisted = list_inputs(spec, ledger, options, keep_going, retry_failed)
    listed = list(everything.partitions) if everything else []
    if everything is not None:
        given = [i for i in spec.inputs if not is_remote(i) and os.path.isdir(i)]
        check_out_dir(spec.output, everything.paths, everything.root, given)
    kinds = ledger.classify(listed, spec.version)
    # a partition that cannot even be listed: failed now, or known to have failed
    failed = {key: error for key, (p, error) in unlisted.items()
              if retry_failed or ledger.status(p) != "failed"}
    kinds["failed"] += [p for key, (p, _) in unlisted.items() if key not in failed]
    again: list = []
    runners = [runner(spec, step) for step in spec.steps]
    if full:
        todo = listed
        report.skipped = {"failed": [p.rel for key, (p, _) in unlisted.items()
                                     if key not in failed]}
    else:
        _refuse_changed_spec(spec, ledger)
        todo = kinds["new"]
        again = kinds["changed"] if reprocess_changed else []
        if retry_failed:  # a failed new content of a path done before: applied only
            done_paths = ledger.done_paths()
            retried = [p for p in kinds["failed"] if p in listed]
            todo = [p for p in retried if p.rel not in done_paths]
            again = [p for p in retried if p.rel in done_paths]
        if again:
            _refuse_ordered_reapply(runners)
        taken = {"failed"} if retry_failed else {"new", "changed"} if again else {"new"}
        report.skipped = {k: [p.rel for p in v] for k, v in kinds.items()
                          if k in ("new", "changed", "failed", "stale") and v
                          and k not in taken}
    report.skipped = {k: v for k, v in report.skipped.items() if v}
    if dry_run:
        report.status, report.processed = "dry run", [p.rel for p in todo]
        report.plan = _plan_text(spec, runners, todo, again, ledger, full)
        return
    bad = [p for p, _ in unlisted.values() if content_key(p) in failed]
    report.failed = {p.rel: failed[content_key(p)] for p in bad}
    if not todo and not again and not bad:
        report.status = "nothing new"
        return
    done = _process(spec, ledger, folder, runners, todo, everything, True, full, keep_going,
                    executor, options, report, bad)
    report.processed = [p.rel for p in done]
    report.rows = sum(p.rows for p in done)
    if again:  # with the states just saved, learning nothing from them
        redone = _process(spec, ledger, folder, runners, again, everything, False, False,
                          keep_going, executor, options, report, bad)
        report.reapplied = [p.rel for p in redone]
    if bad:
        ledger.record(bad, "failed", ledger.generation, spec.version, report.failed)
        report.status = "partly done" if done or report.reapplied else "failed"


def _process(spec, ledger, folder, runners, todo, everything, learn, full, keep_going,
             executor, options, report, bad) -> list:
    """Fit (when ``learn``), apply and publish ``todo``; save the states and record the
    partitions in the ledger (saved by the caller). With ``keep_going`` a partition that
    fails is moved to ``bad`` (its error in ``report.failed``) and the others go again
    from the saved states. The partitions done."""
    todo = list(todo)
    while todo:
        try:
            files, states = _apply(spec, ledger, folder, runners, todo, everything, learn,
                                   full, executor, options, report)
            break
        except BigprepError as err:
            culprit = next((p for p in todo if p.path == err.partition), None)
            if not keep_going or culprit is None:
                raise
            todo.remove(culprit)
            bad.append(culprit)
            report.failed[culprit.rel] = str(err)
    else:
        return []
    report.files += files
    if learn:
        _save_states(ledger, folder, spec, states, todo, full)
    else:
        ledger.record(todo, "done", ledger.generation, spec.version)
    return todo


def _apply(spec, ledger, folder, runners, todo, everything, learn, full, executor, options,
           report) -> tuple[list, dict]:
    """Fit every step on ``todo`` (merged into the saved states; or the saved states as
    they are, without ``learn``) and publish its outputs: (files, states)."""
    dataset = open_dataset([p.path for p in todo], options, root=everything.root)
    mode = "overwrite" if full else "add"
    commit = Commit(spec.output, mode,
                    run_key(f"bigprep run {spec.name}", {"spec": spec.version}, dataset),
                    f"bigprep run {spec.name}", options)
    commit.check()
    with commit.holding():
        priors = {} if full else {r.step.key: r.load(os.path.join(folder, name))
                                  for r in runners if r.stateful
                                  and (name := ledger.states.get(r.step.key))}
        transforms, fitted = fit_steps(runners, dataset, executor, priors, learn)
        states = {r.step.key: (r, f) for r, f in zip(runners, fitted) if r.stateful}
        if learn:  # a reprocess phase keeps what the learning phase reported
            report.steps = [{"step": r.step.label, "kind": r.step.kind,
                             "updated" if r.step.key in priors else "fitted": r.stateful}
                            for r in runners]
        files = write_each(dataset, commit, Chained(transforms), executor,
                           chunk_rows=spec.chunk_rows, label=spec.name,
                           compression=spec.compression)
    return files, states


def fit_steps(runners, dataset, executor, priors: dict, learn: bool = True
              ) -> tuple[list, list]:
    """Fit every step on the chunks as the steps before it leave them (applied in
    memory), merged into its prior state (without ``learn``: the prior states as they
    are, with what applying them needs); (transforms, fitted states).

    Adjacent steps whose fits do not read what the others change fit together, in
    one read per pass (``fused``); a step that reads an earlier step's output fits
    after it, on its transform's output.
    """
    transforms, fitted = [], []
    while len(fitted) < len(runners):
        upstream = Chained(transforms) if transforms else None
        here = view(dataset, transforms[-1].schema if transforms else None)
        rest = runners[len(fitted):]
        group = fused(rest, here, priors, learn)
        if group:
            states = iter(fit_together([j for _, j in group if j is not None], here,
                                       executor, upstream=upstream))
            earlier = dict(zip((r.step.key for r in runners), fitted))
            done = [earlier[r.step.source] if r.step.source  # predict: its train step's model
                    else next(states) if j is not None else None for r, j in group]
        else:  # a step fitted by its own loop (training)
            group = [(rest[0], None)]
            done = [rest[0].fit(here, executor, priors.get(rest[0].step.key), upstream, learn)]
        for (r, _), state in zip(group, done):
            here = view(dataset, transforms[-1].schema if transforms else None)
            transforms.append(r.transformer(state, here))
            fitted.append(state)
    return transforms, fitted


def fused(runners, dataset, priors: dict, learn: bool = True) -> list:
    """The leading runners whose fits can share one read: each reads none of the
    columns the ones before it fill or add, and plans by column name. (runner, job)."""
    group, written = [], set()
    for r in runners:
        if not r.fusable:
            break
        try:
            job = r.job(dataset, priors.get(r.step.key), learn)
        except BigprepError:
            if not group:
                raise
            break  # it reads a column an earlier step makes: it plans after that step
        reads = job.reads if job is not None and job.template is not None else []
        if group and (written is None or reads is None or written & set(reads)
                      or not r.by_name()):
            break
        group.append((r, job))
        writes = r.writes(job)
        written = None if written is None or writes is None else written | writes
    return group


def _refuse_changed_spec(spec: Spec, ledger: Ledger) -> None:
    if ledger.spec_version is not None and ledger.spec_version != spec.version:
        raise BigprepError(
            f"{spec.path}: the steps changed since the saved states were fitted (spec "
            f"version {ledger.spec_version}, now {spec.version}); merging new partitions "
            "into them would mix two definitions. Run with `full` to refit everything.")


def _refuse_ordered_reapply(runners) -> None:
    """Applying saved states to a changed partition without its neighbours' boundary
    values would fill its first and last gaps from the wrong rows."""
    for r in runners:
        if r.step.kind == "impute" and r.fills_in_order():
            raise BigprepError(
                f"`reprocess_changed`: {r.step.label} fills across partitions in order "
                "(ffill / bfill / interpolate), and the saved state does not keep the "
                "boundary values around a partition done earlier, so its output cannot be "
                "rewritten exactly. Refit over everything with `full`.")


def _save_states(ledger: Ledger, folder: str, spec: Spec, states: dict, todo, full: bool
                 ) -> list[str]:
    """Save the states under the next generation's names and record them (and the
    partitions done) in the ledger, not yet saved; the names."""
    generation = ledger.generation + 1
    os.makedirs(os.path.join(folder, "steps"), exist_ok=True)
    names = {}
    for key, (r, fitted) in states.items():
        names[key] = os.path.join("steps", r.state_name(generation))
        r.save(os.path.join(folder, names[key]), fitted)
    if full:  # every partition again, but not the failures it could not list
        ledger.partitions = {k: e for k, e in ledger.partitions.items()
                             if e["status"] == "failed"}
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
        if not belongs(os.path.join("steps", name), keep):
            path = os.path.join(steps, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def _log_run(ledger: Ledger, folder: str, report: RunReport, started: float,
             error: str | None = None) -> None:
    report.seconds = time.monotonic() - started
    entry = {"finished": now(), "status": report.status,
             "partitions": len(report.processed), "rows": report.rows,
             "seconds": round(report.seconds, 3)}
    if report.failed:
        entry["failed"] = len(report.failed)
    if report.reapplied:
        entry["reapplied"] = len(report.reapplied)
    if error:
        entry["error"] = error
    ledger.runs.append(entry)
    os.makedirs(folder, exist_ok=True)
    ledger.save(folder)


def _plan_text(spec: Spec, runners, todo, again, ledger: Ledger, full: bool) -> list[str]:
    if not todo and not again:
        return ["nothing new: read, fit and write nothing"]
    lines = [f"read {len(todo)} partition(s)" + (" (all: full)" if full else "")]
    for r in runners:
        if r.stateful:
            has = r.step.key in ledger.states and not full
            lines.append(f"{r.step.label}: {'update the saved state' if has else 'fit'} "
                         "with them")
        else:
            lines.append(f"{r.step.label}: apply")
    lines.append(f"write {len(todo)} file(s) into {spec.output} "
                 f"({'replacing it' if full else 'beside the earlier ones'})")
    if again:
        lines.append(f"rewrite the outputs of {len(again)} changed partition(s) with the "
                     "saved states (learning nothing from them)")
    lines.append(f"save the states and the ledger in {spec.state}")
    return lines
