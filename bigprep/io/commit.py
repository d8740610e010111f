"""Dataset-level commit: a run's output folder changes as a whole or not at all.

A writer never writes into ``out`` itself. It writes into a staging folder beside it
(``.NAME.bigprep-stage-ID``) that ends up holding everything ``out`` will hold: the
earlier outputs it keeps (hard links, when adding), the new files, and last the
manifest. Publishing swaps the staging folder and ``out`` in one atomic rename
(``renameat2(RENAME_EXCHANGE)`` on Linux; elsewhere two renames, and a run killed
between them is rolled forward by the next one), then removes the old folder. A
reader sees the old folder or the new one, never a mix; a killed run leaves ``out``
as it was, and its staging folder is removed by the next run on ``out``.

Object stores have no rename: there the staging prefix is copied onto ``out`` key
by key, stale keys removed, and the manifest written last; a run killed while
copying is rolled forward by the next run (its staging copy is complete).

Modes: ``new`` (``out`` empty or absent; or holding the output of this same command
over the same unchanged inputs, which a re-run after a crash rewrites), ``overwrite``
(replace ``out`` whole, stale files included) and ``add`` (keep the earlier outputs,
add or replace this run's). The manifest always lists exactly the files ``out`` holds.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import posixpath
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import BigprepError
from .lock import locked
from .sink import json_text, sweep_temporary
from .storage import filesystem, is_remote, local, url

MANIFEST = "_bigprep_manifest.json"
FORMAT = "bigprep.manifest"
STAGE = ".bigprep-stage-"
OLD = ".bigprep-old-"
MODES = ("new", "overwrite", "add")
ACTIVE: set[str] = set()  # staging folders of runs under way, removed on an interrupt


def remove_active_staging() -> None:
    """After Ctrl-C or SIGTERM: remove what runs under way had staged (workers may
    still have added files since their own cleanup)."""
    for path in list(ACTIVE):
        shutil.rmtree(path, ignore_errors=True)
        ACTIVE.discard(path)


def run_key(command: str, parameters: dict, dataset) -> str:
    """What identifies a run: the command, its parameters and its inputs' content."""
    inputs = [[p.rel, p.size, p.fingerprint] for p in dataset.partitions]
    text = json.dumps([command, parameters, inputs], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Commit:
    """One run's output folder: checked, staged, published together."""

    def __init__(self, out: str, mode: str, key: str, command: str,
                 options: dict | None = None):
        if mode not in MODES:
            raise ValueError(mode)
        self.out, self.mode, self.key, self.command = out, mode, key, command
        self.options = options or {}
        self.remote = is_remote(out)
        if self.remote:
            self.fs, inner = filesystem(out, self.options)
            self.target = inner.rstrip("/")
        else:
            self.fs = None
            self.target = os.path.realpath(local(out))
        parent, name = posixpath.split(self.target) if self.remote else os.path.split(
            self.target)
        self.parent, self.name = parent, name
        self.staging = self._fresh_staging()
        self.kept: list[dict] = []  # manifest entries of earlier outputs kept (add)

    # -- paths -------------------------------------------------------------------------
    def _join(self, *parts: str) -> str:
        return posixpath.join(*parts) if self.remote else os.path.join(*parts)

    def _fresh_staging(self) -> str:
        return self._join(self.parent, f".{self.name}{STAGE}{uuid.uuid4().hex[:12]}")

    def staged(self, rel: str) -> str:
        """Where this run writes the output at ``rel``."""
        path = self._join(self.staging, rel)
        return url(self.fs, path) if self.remote else path

    # -- checks --------------------------------------------------------------------------
    def check(self) -> None:
        """Refuse, before any data is read, to write where the mode does not allow."""
        manifest, files = self._read(self.target)
        if not files:
            return
        listed = {entry["file"] for entry in manifest["files"]} if manifest else set()
        stray = sorted(set(files) - listed)
        if self.mode == "overwrite":
            return
        if self.mode == "new" and manifest and manifest.get("run") == self.key and not stray:
            return  # this same run again (e.g. after a crash): it rewrites the same files
        if self.mode == "add" and manifest and not stray:
            missing = sorted(listed - set(files))
            if missing:
                raise BigprepError(
                    f"`out` {self.out}: its manifest lists {missing[0]} but the file is "
                    "gone; the folder was changed by hand. Pass `overwrite` to rewrite it "
                    "whole, or restore the file.")
            self.kept = manifest["files"]
            return
        if self.mode == "add":
            raise BigprepError(
                f"`out` {self.out}: holds {stray[0]} ({len(stray)} file(s) in all) that "
                f"no bigprep manifest lists; adding to it would mix them with this run's "
                "outputs. Move them away, or pass `overwrite` to replace the folder whole.")
        raise BigprepError(
            f"`out` {self.out}: already holds {len(files)} file(s) (e.g. {min(files)})"
            f"{' of an earlier run' if manifest else ''}. Pass `overwrite` to replace the "
            "folder whole, or choose an empty folder.")

    def _read(self, folder: str) -> tuple[dict | None, list[str]]:
        """(manifest, relative paths of every other file) of a folder."""
        files = self._list(folder)
        manifest = None
        if MANIFEST in files:
            files.remove(MANIFEST)
            try:
                with self._open(self._join(folder, MANIFEST)) as fh:
                    manifest = json.load(fh)
                if not isinstance(manifest, dict) or not isinstance(manifest.get("files"),
                                                                    list):
                    raise TypeError("not a manifest")
                for entry in manifest["files"]:
                    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
                        raise TypeError("an entry has no file name")
            except (OSError, ValueError, TypeError) as exc:
                raise BigprepError(
                    f"`out` {self.out}: its {MANIFEST} cannot be read ({exc}). Pass "
                    "`overwrite` to rewrite the folder whole.") from None
        return manifest, files

    def _list(self, folder: str) -> list[str]:
        if self.remote:
            if not self.fs.exists(folder):
                return []
            return sorted(posixpath.relpath(p, folder) for p in self.fs.find(folder))
        if not os.path.isdir(folder):
            return []
        return sorted(os.path.relpath(os.path.join(d, n), folder)
                      for d, _, names in os.walk(folder) for n in names)

    def _open(self, path: str, mode: str = "r"):
        return self.fs.open(path, mode) if self.remote else open(path, mode)

    # -- the run -----------------------------------------------------------------------
    def holding(self):
        """``out``'s lock (``.NAME.bigprep.lock`` beside it), held by a run from its first
        read to its publish so a second writer is told at once; re-entrant."""
        lock = None if self.remote else self._join(self.parent, f".{self.name}.bigprep")
        return locked(lock, "out")

    @contextmanager
    def run(self) -> Iterator[Commit]:
        """Hold ``out``'s lock, finish or clear what a killed run left, check the mode,
        start the staging folder; remove it if the body fails."""
        with self.holding():
            self.recover()
            self.check()
            self._start()
            if not self.remote:
                ACTIVE.add(self.staging)
            try:
                yield self
            except BaseException:
                self._remove(self.staging)
                raise
            finally:
                ACTIVE.discard(self.staging)

    def _start(self) -> None:
        if self.remote:
            return
        os.makedirs(self.staging)
        for entry in self.kept:  # earlier outputs: the same bytes, no copy
            src, dst = self._join(self.target, entry["file"]), self.staged(entry["file"])
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

    def publish(self, files: list[dict]) -> None:
        """Make ``out`` hold the kept files and ``files``, and a manifest of exactly them."""
        written = {entry["file"] for entry in files}
        entries = [e for e in self.kept if e["file"] not in written] + list(files)
        entries.sort(key=lambda e: e["file"])
        for entry in entries:  # on an object store kept files stay where they are
            if entry["file"] in written or not self.remote:
                entry["bytes"] = self._size(self.staged(entry["file"]))
        manifest = {"format": FORMAT, "version": 1, "command": self.command,
                    "run": self.key if self.mode != "add" else None, "files": entries}
        if not self.remote:
            sweep_temporary(self.staging)  # before the manifest, which marks it complete
        self._write_manifest(self.staging, manifest)
        if self.remote:
            self._publish_remote(manifest, copy=[e["file"] for e in files])
        else:
            _sync_tree(self.staging)
            self._swap()

    def _size(self, path: str) -> int:
        return self.fs.size(path) if self.remote else os.path.getsize(path)

    def _write_manifest(self, folder: str, manifest: dict) -> None:
        text = json_text(manifest)
        path = self._join(folder, MANIFEST)
        if self.remote:
            self.fs.pipe_file(path, text.encode())
            return
        with open(path, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def _swap(self) -> None:
        if not os.path.exists(self.target):
            os.makedirs(self.parent, exist_ok=True)
            os.rename(self.staging, self.target)
        elif not _exchange(self.staging, self.target):
            old = self._join(self.parent, f".{self.name}{OLD}{uuid.uuid4().hex[:12]}")
            os.rename(self.target, old)  # a kill here: the next run renames staging in
            os.rename(self.staging, self.target)
            self.staging = old
        _sync_dir(self.parent)
        self._remove(self.staging)  # now the earlier folder

    def _publish_remote(self, manifest: dict, copy: list[str]) -> None:
        staging = self.staging
        keep = {e["file"] for e in manifest["files"]}
        for rel in copy:
            self.fs.copy(self._join(staging, rel), self._join(self.target, rel))
        for rel in self._list(self.target):
            if rel != MANIFEST and rel not in keep:
                self.fs.rm(self._join(self.target, rel))
        self._write_manifest(self.target, manifest)
        self._remove(staging)

    # -- what killed runs left ---------------------------------------------------------
    def recover(self) -> None:
        """Roll forward a publish that a kill interrupted; remove every other leftover."""
        leftovers = self._leftovers()
        complete = [p for p in leftovers if STAGE in p and self._has_manifest(p)]
        if self.remote and complete:  # a copy onto out may have begun: finish it
            self.staging = complete[0]
            manifest, _ = self._read(complete[0])
            staged = [e["file"] for e in manifest["files"]  # not the kept ones (add mode)
                      if self.fs.exists(self._join(complete[0], e["file"]))]
            self._publish_remote(manifest, staged)
        elif not self.remote and complete and not os.path.exists(self.target):
            os.rename(complete[0], self.target)  # killed between the two renames
        for path in self._leftovers():
            self._remove(path)
        self.staging = self._fresh_staging()

    def _leftovers(self) -> list[str]:
        prefix = f".{self.name}"
        if self.remote:
            if not self.fs.exists(self.parent):
                return []
            names = [posixpath.basename(p.rstrip("/")) for p in self.fs.ls(self.parent,
                                                                            detail=False)]
        else:
            names = os.listdir(self.parent) if os.path.isdir(self.parent) else []
        return sorted(self._join(self.parent, n) for n in names
                      if n.startswith(prefix) and (STAGE in n or OLD in n)
                      and n[len(prefix):].startswith((STAGE, OLD)))

    def _has_manifest(self, folder: str) -> bool:
        path = self._join(folder, MANIFEST)
        return self.fs.exists(path) if self.remote else os.path.exists(path)

    def _remove(self, path: str) -> None:
        if self.remote:
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)
        elif os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)


def _exchange(a: str, b: str) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot
        return False
    raise OSError(errno, os.strerror(errno), b)


def _sync_tree(folder: str) -> None:
    """Flush the staged folders' entries before the publish (each file was flushed by
    its writer): after a power cut the published folder holds whole files."""
    for directory, _, _ in os.walk(folder):
        _sync_dir(directory)


def _sync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
