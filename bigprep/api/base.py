"""What every estimator of the Python API shares: parameters, the run preamble, saving.

Estimators are shaped like scikit-learn's: keyword-only parameters stored as
given, validated when fitting (by the operation's declared ``Params``), learned
attributes ending in ``_``, ``get_params`` / ``set_params``.
"""

from __future__ import annotations

import inspect
import os
from typing import ClassVar

from ..engine.executor import Executor
from ..errors import BigprepError
from ..io.commit import Commit, run_key
from ..io.dataset import Dataset, open_dataset
from ..io.sink import check_compression, check_out_dir, check_state_path
from ..io.statefile import Envelope, decoded, load_envelope, save_envelope
from ..io.storage import is_remote
from ..ops.base import Operation, validate

RUNTIME = ("executor", "storage_options")  # how to run, not what to compute: never saved


class Estimator:
    """Base: ``get_params`` from the signature, one run preamble, one save / load."""

    operation: ClassVar[type[Operation]]
    unsaved: ClassVar[tuple[str, ...]] = ()  # how outputs are written, not what is fitted

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p.name for p in inspect.signature(cls.__init__).parameters.values()
                if p.kind is p.KEYWORD_ONLY]

    def get_params(self, deep: bool = True) -> dict:
        """The parameters as given to the constructor."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in self._param_names():
                raise BigprepError(f"{name}: not a parameter of {type(self).__name__}; "
                                   f"known: {', '.join(self._param_names())}.")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if sig[k].default is not v and sig[k].default != v]
        return f"{type(self).__name__}({', '.join(changed)})"

    # -- running ---------------------------------------------------------------------------
    def _executor(self) -> Executor:
        return self.executor if self.executor is not None else Executor()

    def _options(self) -> dict:
        return dict(self.storage_options or {})

    def _open(self, inputs, *, out: str | None = None, state: str | None = None) -> Dataset:
        """The run preamble: read the footers, and refuse an output or state path that
        would overwrite or mix with the inputs, before any data is read."""
        dataset = open_dataset(inputs, self._options())
        if out is not None:
            given = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
            folders = [str(i) for i in given if not is_remote(str(i)) and os.path.isdir(i)]
            check_out_dir(out, dataset.paths, dataset.root, folders)
        if state is not None:
            check_state_path(state, dataset.paths, out)
        return dataset

    def _output(self, dataset: Dataset, out: str, command: str, parameters: dict, *,
                overwrite: bool = False, add: bool = False) -> Commit:
        """The commit of a run's output folder, checked before any data is read:
        ``out`` must be empty unless ``overwrite`` (replace it whole) or ``add``."""
        if overwrite and add:
            raise BigprepError("`overwrite` replaces the output folder whole and `partial_fit` "
                               "adds to it: give one of them.")
        check_compression(getattr(self, "compression", None))
        mode = "add" if add else "overwrite" if overwrite else "new"
        commit = Commit(out, mode, run_key(command, parameters, dataset), command,
                        self._options())
        commit.check()
        return commit

    def _check_fitted(self, attribute: str = "state_") -> None:
        if not hasattr(self, attribute):
            raise BigprepError(f"this {type(self).__name__} is not fitted yet: call fit "
                               "first, or load a saved state.")

    # -- saving ------------------------------------------------------------------------
    def _saved_params(self) -> dict:
        return {k: v for k, v in self.get_params().items()
                if k not in RUNTIME and k not in self.unsaved}

    def _save_state(self, path: str, state, parameters: dict) -> None:
        """One envelope for every estimator: what fitted it, from what, and the payload."""
        sidecar: dict = {}
        payload = state.to_payload(sidecar)
        save_envelope(path, Envelope(self.operation.name, parameters, payload, sidecar,
                                     state.seen, state.created, state.updates), self._options())

    @classmethod
    def _load_envelope(cls, path: str, storage_options: dict | None):
        return load_envelope(path, cls.operation.name, cls.operation.title, storage_options)

    @staticmethod
    def _decoded(path, decode, *args):
        return decoded(path, decode, *args)

    @staticmethod
    def _saved_parameters(path: str, params_type, values: dict):
        """The saved parameters, checked; a bad one is the file's fault, not the user's."""
        try:
            return validate(params_type, values)
        except BigprepError as err:
            raise BigprepError(f"`state` {path}: its saved parameters are not valid "
                               f"({err}); the file was edited or saved by another "
                               "bigprep. Fit a new state.") from None

    def _saved(self, path: str | None):
        if path is not None:
            self.save(path)
        return self
