"""A pipeline spec: YAML read with line numbers, checked by the operations' own models.

Every step is one registered operation with the Python API's parameter names; its
parameters are validated by that operation's pydantic model (so a pipeline, the API
and the CLI accept and refuse the same things). Errors say ``FILE:LINE: message``.
Nothing here reads data: ``validate`` checks a spec before any run.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from dataclasses import dataclass

from pydantic import Field, field_validator, model_validator

from ..errors import UsageError
from ..io.dataset import DEFAULT_CHUNK_ROWS
from ..io.storage import is_remote
from ..models.estimators import TrainOptions
from ..models.families import TASK_OF
from ..models.predict import PredictParams
from ..ops.base import Checked, Compression, validate
from ..ops.impute.operation import ImputeParams
from ..ops.tfidf.operation import TfidfParams
from ..ops.tfidf.vectors import INDICES, KEYWORDS, WEIGHTS

RUN_LEVEL = ("chunk_rows", "compression")  # set once for the whole pipeline


class TfidfStep(TfidfParams):
    keywords: int = Field(0, ge=0, description="Add the top K terms of each document.")
    vectors: bool = Field(True, description="Add the sparse TF-IDF vector.")
    keep: tuple[str, ...] | None = Field(None, description="Columns to pass on (all).")


class TrainStep(TrainOptions):
    target: str | None = Field(None, description="The column to predict (not for kmeans).")
    features: tuple[str, ...] = Field((), description="Feature columns as glob patterns "
                                      "(every column but the target).")
    categorical: tuple[str, ...] = Field((), description="Columns to one-hot encode.")

    @model_validator(mode="after")
    def _target(self):
        if TASK_OF[self.model] != "cluster" and not self.target:
            raise ValueError(f"a {TASK_OF[self.model]} model ({self.model}) needs `target`, "
                             "the column to predict")
        return self

    @field_validator("features", "categorical", mode="before")
    @classmethod
    def _listed(cls, value):  # "temp,humidity" as on the command line
        return [c.strip() for c in value.split(",") if c.strip()] \
            if isinstance(value, str) else value


class PredictStep(PredictParams):
    model: str | None = Field(None, description="A model folder written by `bigprep "
                              "train` (default: the model of the train step before).")
    keep: tuple[str, ...] | None = Field(None, description="Columns to pass on (all).")


STEP_KINDS: dict[str, type] = {"impute": ImputeParams, "tfidf": TfidfStep,
                               "train": TrainStep, "predict": PredictStep}


class SpecModel(Checked):

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    input: str | list[str]
    output: str
    state: str
    steps: list[dict] = Field(min_length=1)
    chunk_rows: int = Field(DEFAULT_CHUNK_ROWS, ge=1)
    compression: Compression = "zstd"
    description: str | None = None


@dataclass
class Step:
    index: int
    kind: str
    params: object  # the kind's pydantic model
    line: int
    source: str | None = None  # predict without a model: the train step whose model it uses

    @property
    def label(self) -> str:
        return f"step {self.index + 1} ({self.kind})"

    @property
    def key(self) -> str:
        """Where its state lives in the state folder."""
        return f"{self.index + 1}-{self.kind}"


@dataclass
class Spec:
    path: str
    name: str
    inputs: list[str]
    output: str
    state: str
    steps: list[Step]
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    compression: str | None = "zstd"

    @property
    def version(self) -> str:
        """A hash of what the steps compute (not of where files are): a changed
        version means the partitions done earlier were done differently."""
        steps = [{s.kind: s.params.model_dump(mode="json")} for s in self.steps]
        text = json.dumps([steps, self.chunk_rows], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_spec(path: str) -> Spec:
    """Read and check a spec; every error as ``FILE:LINE: message`` (exit code 2)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    try:
        data = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}:{line}: not valid YAML ({problem}).") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}:1: a pipeline spec is a mapping with name, input, output, "
                         "state and steps.")
    top = _validated(path, SpecModel, data, 1)
    folder = os.path.dirname(os.path.abspath(path))
    steps = [_step(path, data["steps"], i) for i in range(len(top.steps))]
    inputs = top.input if isinstance(top.input, list) else [top.input]
    spec = Spec(path, top.name, [_relative(folder, p) for p in inputs],
                _relative(folder, top.output), _relative(folder, top.state), steps,
                top.chunk_rows, top.compression)
    for step in steps:
        if step.kind == "predict" and step.params.model is not None:
            step.params = step.params.model_copy(
                update={"model": _relative(folder, step.params.model)})
        elif step.kind == "predict" and step.source is None:  # no model and no train step
            raise UsageError(f"{path}:{step.line}: {step.label}: `model` is required (a "
                             "model folder written by `bigprep train`) unless a train step "
                             "comes before it.")
    check_columns(spec)
    return spec


def _relative(folder: str, path: str) -> str:
    """A relative path in the spec is relative to the spec file's folder."""
    if is_remote(path) or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(folder, path))


def _step(path: str, steps, i: int) -> Step:
    item = steps[i]
    line = _line(steps, i)
    if not isinstance(item, dict) or len(item) != 1:
        raise UsageError(f"{path}:{line}: a step is one operation name with its "
                         f"parameters, e.g. '- impute: {{strategy: median}}'; known: "
                         f"{', '.join(STEP_KINDS)}.")
    (kind, params), = item.items()
    if kind not in STEP_KINDS:
        close = difflib.get_close_matches(str(kind), list(STEP_KINDS), 1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise UsageError(f"{path}:{line}: unknown step {kind}.{hint} Known: "
                         f"{', '.join(STEP_KINDS)}.")
    params = params if params is not None else {}
    if not isinstance(params, dict):
        raise UsageError(f"{path}:{line}: the parameters of {kind} are a mapping "
                         "(name: value).")
    for name in RUN_LEVEL:
        if name in params:
            raise UsageError(f"{path}:{_line(params, name)}: {name} is set once for the "
                             "whole pipeline (a top-level key), not per step.")
    step = Step(i, kind, _validated(path, STEP_KINDS[kind], params, line, f"{kind}: "), line)
    if kind == "predict" and step.params.model is None:  # the nearest train step's model
        step.source = next((f"{j + 1}-train" for j in range(i - 1, -1, -1)
                            if next(iter(steps[j]), None) == "train"), None)
    return step


def _validated(path: str, model, values, line: int, prefix: str = ""):
    """``values`` checked by ``model`` (as the API checks them); an error at the line of
    the key it names (``line`` when it names none there)."""
    try:
        return validate(model, dict(values))
    except UsageError as err:
        where = _line(values, err.param) if err.param in values else line
        raise UsageError(f"{path}:{where}: {prefix}{err}") from None


def _line(node, key) -> int:
    """The 1-based line of ``key`` in a ruamel mapping or sequence (1 if unknown)."""
    lc = getattr(node, "lc", None)
    try:
        return (lc.item(key)[0] if isinstance(key, int) else lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return getattr(lc, "line", 0) + 1


# -- columns between steps ---------------------------------------------------------------

MADE_BY = {"tfidf": lambda p: ([INDICES, WEIGHTS] if p.vectors else [])
           + ([KEYWORDS] if p.keywords else []),
           "predict": lambda p: ["prediction"]}


def needed(step: Step) -> list[tuple[str, str]]:
    """(column, parameter) pairs a step reads, as far as the spec says."""
    p = step.params
    if step.kind == "impute":
        pairs = [(c, "columns") for c in (p.columns or {})]
        pairs += [(c, n) for c, n in ((p.group_by, "group_by"), (p.order_by, "order_by")) if c]
        return pairs
    if step.kind == "tfidf":
        return [(p.text_column, "text_column")] + [(c, "keep") for c in p.keep or ()]
    if step.kind == "train":
        return ([(p.target, "target")] if p.target else []) + \
            [(c, "features") for c in p.features if not any(ch in c for ch in "*?[")]
    return [(c, "keep") for c in p.keep or ()]


def made(step: Step) -> list[str]:
    """The columns a step adds."""
    maker = MADE_BY.get(step.kind)
    return maker(step.params) if maker else []


def check_columns(spec: Spec) -> None:
    """A column a step needs that an earlier step dropped (with ``keep``), or that only
    a later step makes: stop, naming the step's line. (Input columns are not known
    without reading data: a name nothing makes is taken to be one.)"""
    passed: set | None = None  # the columns passed on; None: every input column too
    for step in spec.steps:
        for column, param in needed(step):
            if passed is not None and column not in passed:
                raise UsageError(f"{spec.path}:{step.line}: {step.label}: {param} "
                                 f"{column!r} is not passed on by an earlier step's keep. "
                                 "Add it there, or drop that keep.")
            maker = next((s for s in spec.steps[step.index + 1:] if column in made(s)), None)
            if maker is not None and (passed is None or column not in passed):
                raise UsageError(f"{spec.path}:{step.line}: {step.label}: {param} "
                                 f"{column!r} is made by {maker.label}, which comes later. "
                                 "Put the steps in order.")
        keep = getattr(step.params, "keep", None)
        if keep is not None:
            passed = set(keep)
        if passed is not None:
            passed |= set(made(step))
