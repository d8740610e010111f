"""A SIGKILL at every step of saving a model or a state, not at random times.

The command runs in a child whose ``os`` file operations (replace, rename, remove,
unlink, mkdir, link) are counted; before the N-th one under the test's folder the
child SIGKILLs itself. N goes from 1 until a run completes without reaching N, so a
kill lands between every pair of renames of every checkpoint. After each kill the
model or state on disk loads as a whole (the earlier one or the new one), and a
re-run ends identical to an uninterrupted run (the same coefficients and history for
a model, the same vocabulary and weights for a state).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from bigprep.api.models import SGDModel
from bigprep.api.text import TfidfVectorizer
from tests.helpers import write_partitions

# the child: count file operations below ROOT, SIGKILL itself before the N-th
CHILD = r"""
import os, runpy, signal, sys
root, limit = os.path.realpath(sys.argv[1]), int(sys.argv[2])
count = 0
def counted(fn):
    def wrapper(path, *args, **kwargs):
        global count
        target = os.path.realpath(os.fspath(path)) if isinstance(path, (str, os.PathLike)) \
            else ""
        if target.startswith(root + os.sep):
            count += 1
            if count == limit:
                os.kill(os.getpid(), signal.SIGKILL)
        return fn(path, *args, **kwargs)
    return wrapper
for name in ("replace", "rename", "remove", "unlink", "mkdir", "link", "rmdir"):
    setattr(os, name, counted(getattr(os, name)))
sys.argv = ["bigprep", *sys.argv[3:]]
runpy.run_module("bigprep", run_name="__main__")
"""


OPTIONS = ("--chunk-rows", "200", "-q")


def run_killed_at(limit: int, root, *args, options=OPTIONS) -> int:
    """Run ``bigprep ARGS OPTIONS`` killed before its ``limit``-th file operation under
    ``root``; the exit code (-9 when the kill happened)."""
    command = [sys.executable, "-c", CHILD, str(root), str(limit), *map(str, args),
               *options]
    return subprocess.run(command, stderr=subprocess.DEVNULL, check=False).returncode


def every_kill_point(root, *args, options=OPTIONS):
    """Yield after each run killed at step 1, 2, ... until one completes."""
    for limit in range(1, 200):
        code = run_killed_at(limit, root, *args, options=options)
        if code == 0:
            return
        assert code == -9, f"run stopped with exit code {code} at step {limit}"
        yield limit
    raise AssertionError("the command never completed")


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    root = tmp_path_factory.mktemp("points")
    rng = np.random.default_rng(5)
    n = 2_000
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"])
    x = rng.normal(size=(n, 2))
    frame = pl.DataFrame({"text": [" ".join(rng.choice(words, 5)) for _ in range(n)],
                          "a": x[:, 0], "b": x[:, 1], "y": (x[:, 0] > x[:, 1]).astype(int)})
    write_partitions(frame, root / "docs", [500] * 4)
    return root / "docs"


def bigprep(*args):
    subprocess.run([sys.executable, "-m", "bigprep", *map(str, args), "--chunk-rows", "200",
                    "-q"], check=True)


def test_train_killed_at_every_step_of_every_checkpoint(docs, tmp_path):
    args = ("train", docs, "--target", "y", "--features", "a,b", "--epochs", "2",
            "--validation", "0.2")
    reference = tmp_path / "ref"
    bigprep(*args, "--out", reference)
    expected = SGDModel.load(str(reference))
    work = tmp_path / "work"
    work.mkdir()
    model = work / "model"
    points = 0
    for points in every_kill_point(work, *args, "--out", model):
        if (model / "model.json").exists():  # a checkpoint left behind loads whole
            loaded = SGDModel.load(str(model))
            assert 1 <= len(loaded.history_) <= 2
        bigprep(*args, "--out", model)  # and the re-run ends as an uninterrupted run
        again = SGDModel.load(str(model))
        np.testing.assert_array_equal(again.estimator_.coef_, expected.estimator_.coef_)
        assert again.history_ == expected.history_
        # one checkpoint (skops files are not byte-reproducible: zip times, object ids)
        names = sorted(os.listdir(model))
        assert len(names) == 2 and names[0].endswith(".skops") and names[1] == "model.json"
        assert sorted(os.listdir(work)) == ["model"]  # no lock, nothing temporary
        subprocess.run(["rm", "-rf", str(model)], check=True)
    assert points >= 4  # two checkpoints, each at least two renames


def test_tfidf_update_killed_at_every_step_of_saving_the_state(docs, tmp_path):
    files = sorted(docs.glob("*.parquet"))
    reference = tmp_path / "ref.json"
    bigprep("tfidf", "fit", *files[:2], "--text-column", "text", "--state", reference)
    bigprep("tfidf", "update", *files[2:], "--state", reference)
    expected = TfidfVectorizer.load(str(reference))
    work = tmp_path / "work"
    work.mkdir()
    state = work / "s.json"
    points = 0
    for points in every_kill_point(work, "tfidf", "fit", *files[:2], "--text-column", "text",
                                   "--state", state):
        pass
    assert points >= 1
    fitted = set(os.listdir(work))
    for points in every_kill_point(work, "tfidf", "update", *files[2:], "--state", state):
        loaded = TfidfVectorizer.load(str(state))  # the earlier state or the new, whole
        assert loaded.documents_ in (1000, 2000)
        if loaded.documents_ == 1000:
            bigprep("tfidf", "update", *files[2:], "--state", state)
        again = TfidfVectorizer.load(str(state))
        assert again.vocabulary_ == expected.vocabulary_
        assert again.idf_.tolist() == expected.idf_.tolist()
        assert again.documents_ == 2000
        # back to the fitted state for the next kill point
        for name in os.listdir(work):
            os.remove(work / name)
        bigprep("tfidf", "fit", *files[:2], "--text-column", "text", "--state", state)
        assert set(os.listdir(work)) == fitted
    assert points >= 2  # the sidecar and the JSON at least


def test_the_same_data_saves_the_same_state_bytes(docs, tmp_path):
    """A state's sidecar is named by its content hash: a re-run that gives the same
    state must give the same bytes (hash aggregations vary their row order, zip
    members carry times, string views leave varying buffer bytes)."""
    for name in ("a", "b"):
        bigprep("tfidf", "fit", docs, "--text-column", "text", "--state", tmp_path / f"t{name}.json")
        bigprep("impute", docs, "--strategy", "mode", "--column", "a=median",
                "--column", "b=ffill", "--group-by", "y", "--state", tmp_path / f"i{name}.json",
                "--out", tmp_path / f"out-{name}")
    for kind in ("t", "i"):
        sidecars = [sorted(p.name.split(".")[2] for p in tmp_path.glob(f"{kind}{n}.json.*.npz"))
                    for n in ("a", "b")]
        assert len(sidecars[0]) == 1 and sidecars[0] == sidecars[1]
