"""Kill tests beyond impute (which tests/test_commit.py covers): a real SIGKILL or
SIGTERM part way through tfidf fit / update / transform and train leaves the earlier
state, model or output whole, and a re-run ends with what an uninterrupted run gives."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest

from bigprep.api.models import SGDModel
from bigprep.api.text import TfidfVectorizer
from tests.helpers import write_partitions

WORDS = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("kills")
    rng = np.random.default_rng(3)
    n = 16_000
    text = [" ".join(rng.choice(WORDS, 8)) for _ in range(n)]
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    frame = pl.DataFrame({"id": np.arange(n), "text": text, "a": x[:, 0], "b": x[:, 1],
                          "c": x[:, 2], "y": y})
    write_partitions(frame, root / "docs", [1000] * 16)
    return root


def bigprep(*args) -> list[str]:
    return [sys.executable, "-m", "bigprep", *map(str, args), "--chunk-rows", "100", "-q"]


def digest(folder) -> dict:
    found = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(directory, name), "rb") as fh:
                found[os.path.relpath(os.path.join(directory, name), folder)] = \
                    hashlib.sha256(fh.read()).hexdigest()
    return found


def leftovers(folder) -> list[str]:
    return [os.path.join(d, n) for d, dirs, names in os.walk(folder) for n in names + dirs
            if ".bigprep-tmp-" in n or ".bigprep-stage-" in n or n.endswith(".lock")]


def killed(args, fraction: float, duration: float, sig) -> int:
    proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    time.sleep(duration * fraction)
    proc.send_signal(sig)
    return proc.wait()


def timed(args) -> float:
    start = time.monotonic()
    subprocess.run(args, check=True)
    return time.monotonic() - start


def state_content(path) -> dict:
    """What a TF-IDF state says, without the times it was written."""
    tf = TfidfVectorizer.load(str(path))
    return {"vocabulary": tf.vocabulary_, "idf": tf.idf_.tolist(),
            "documents": tf.documents_}


KILLS = [(signal.SIGKILL, 0.4), (signal.SIGKILL, 0.85), (signal.SIGTERM, 0.6)]


@pytest.mark.parametrize("sig, fraction", KILLS)
def test_tfidf_fit_then_update_killed_part_way(corpus, tmp_path, sig, fraction):
    docs = sorted((corpus / "docs").glob("*.parquet"), key=lambda p: int(p.stem.split("-")[1]))
    first, later = docs[:8], docs[8:]
    reference = tmp_path / "ref.json"
    fit = bigprep("tfidf", "fit", *first, "--text-column", "text", "--state", reference)
    duration = timed(fit)
    update = bigprep("tfidf", "update", *later, "--state", reference)
    subprocess.run(update, check=True)
    expected = state_content(reference)

    state = tmp_path / "s.json"
    code = killed(bigprep("tfidf", "fit", *first, "--text-column", "text", "--state", state),
                  fraction, duration, sig)
    assert code != 0 or state.exists()
    if not state.exists() or code != 0:
        subprocess.run(bigprep("tfidf", "fit", *first, "--text-column", "text", "--state",
                               state), check=True)
    before = digest(tmp_path)
    code = killed(bigprep("tfidf", "update", *later, "--state", state), fraction, duration,
                  sig)
    assert not leftovers(tmp_path) or sig == signal.SIGKILL
    assert TfidfVectorizer.load(str(state)).documents_ in (8000, 16000)  # old or new, whole
    if code != 0 and TfidfVectorizer.load(str(state)).documents_ == 8000:
        assert digest(tmp_path) == before or sig == signal.SIGKILL
        subprocess.run(bigprep("tfidf", "update", *later, "--state", state), check=True)
    assert state_content(state) == expected


@pytest.mark.parametrize("sig, fraction", KILLS)
def test_tfidf_transform_killed_part_way(corpus, tmp_path, sig, fraction):
    state = tmp_path / "s.json"
    subprocess.run(bigprep("tfidf", "fit", corpus / "docs", "--text-column", "text",
                           "--state", state), check=True)
    reference, out = tmp_path / "ref", tmp_path / "out"
    args = ("tfidf", "transform", corpus / "docs", "--state", state, "--keywords", "3")
    duration = timed(bigprep(*args, "--out", reference))
    subprocess.run(bigprep(*args, "--out", out, "--keep", "id"), check=True)
    earlier = digest(out)
    code = killed(bigprep(*args, "--out", out, "--overwrite"), fraction, duration, sig)
    assert digest(out) in (earlier, digest(reference))  # one run's output, never a mix
    if sig != signal.SIGKILL:
        assert code in (0, 130) and not leftovers(tmp_path)
    subprocess.run(bigprep(*args, "--out", out, "--overwrite"), check=True)
    assert digest(out) == digest(reference)
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("sig, fraction", KILLS)
def test_train_killed_part_way_keeps_a_whole_checkpoint(corpus, tmp_path, sig, fraction):
    args = ("train", corpus / "docs", "--target", "y", "--features", "a,b,c",
            "--epochs", "3", "--validation", "0.1")
    reference = tmp_path / "ref"
    duration = timed(bigprep(*args, "--out", reference))
    model = tmp_path / "model"
    killed(bigprep(*args, "--out", model), fraction, duration, sig)
    if (model / "model.json").exists():  # a checkpoint: whole and loadable
        meta = json.loads((model / "model.json").read_text())
        assert meta
        SGDModel.load(str(model))
    assert not [p for p in leftovers(tmp_path) if not p.endswith(".lock")] \
        or sig == signal.SIGKILL
    subprocess.run(bigprep(*args, "--out", model), check=True)
    again, expected = SGDModel.load(str(model)), SGDModel.load(str(reference))
    np.testing.assert_array_equal(again.estimator_.coef_, expected.estimator_.coef_)
    assert again.history_ == expected.history_


def test_two_trainings_into_one_model_folder_the_second_is_told_who_holds_it(corpus,
                                                                             tmp_path):
    args = ("train", corpus / "docs", "--target", "y", "--features", "a,b,c")
    model = tmp_path / "model"
    # the first runs long (patience high, many epochs) so it still holds the lock when the
    # second has started up
    first = subprocess.Popen(bigprep(*args, "--epochs", "60", "--out", model))
    lock = tmp_path / "model.lock"
    deadline = time.monotonic() + 30
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    second = subprocess.run(bigprep(*args, "--epochs", "1", "--out", model),
                            capture_output=True, text=True, check=False)
    assert first.wait() == 0
    assert second.returncode == 1, second.stderr
    assert "another run is updating it" in second.stderr and "pid" in second.stderr
    SGDModel.load(str(model))


def test_every_option_of_every_command_has_help_and_every_command_an_example():
    import click

    from bigprep.cli import main

    def commands(cmd, path):
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from commands(sub, [*path, name])
        yield " ".join(path), cmd

    for path, cmd in commands(main, ["bigprep"]):
        assert "Example" in (cmd.help or ""), path
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"{path} {param.opts[0]}"
