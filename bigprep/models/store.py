"""The model store: a folder with ``model.<hash>.skops`` (no pickle) and ``model.json``.

``model.json`` is the same envelope as every saved state (format, version,
operation, parameters, partitions seen, created); its payload names the skops file
and holds its SHA-256, the feature spec and the training history. Loading refuses
another format, a changed file, or any type outside scikit-learn and numpy.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile

from ..errors import BigprepError
from ..io.sink import atomic_path, sweep_temporary, write_json_atomic
from ..io.statefile import Envelope, load_envelope, timeless_zip
from ..ops.encode import FeatureSpec
from .estimators import TrainOptions


def save_model(out_dir: str, model, spec: FeatureSpec, options: TrainOptions,
               history: list, seen: list, created: str, stamped: bool = True) -> None:
    """Write ``model.<hash>.skops`` first, then ``model.json`` naming it: a run killed
    in between leaves the previous checkpoint whole (its JSON names its own file).
    ``stamped=False``: no wall-clock times (as ``Envelope.to_json``)."""
    import skops.io as sio

    os.makedirs(out_dir, exist_ok=True)
    blob = reproducible(sio.dumps(model))
    digest = hashlib.sha256(blob).hexdigest()
    name = f"model.{digest[:16]}.skops"
    with atomic_path(os.path.join(out_dir, name)) as tmp, open(tmp, "wb") as fh:
        fh.write(blob)
    envelope = Envelope("train", options.model_dump(), {
        "model_file": name, "sha256": digest, "features": spec.to_dict(),
        "history": history}, {}, seen, created, len(history))
    write_json_atomic(os.path.join(out_dir, "model.json"), envelope.to_json(stamped))
    for other in os.listdir(out_dir):  # checkpoints no model.json names any more
        if other != name and re.fullmatch(r"model(\.[0-9a-f]{16})?\.skops", other):
            os.remove(os.path.join(out_dir, other))
    sweep_temporary(out_dir)  # what a killed save left (the caller holds the model's lock)


_ID = re.compile(r'("__id__": |"file": ")(\d+)')


def reproducible(blob: bytes) -> bytes:
    """A skops file made reproducible: skops names objects by their memory address and
    stamps the zip with times; number the objects in order of appearance instead and
    drop the times, so the same model saves the same bytes (and the same file name)."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    schema = members.pop("schema.json").decode()
    number: dict = {}
    schema = _ID.sub(lambda m: m[1] + str(number.setdefault(m[2], len(number) + 1)), schema)
    arrays = []
    for name, data in members.items():
        stem, dot, ext = name.partition(".")
        if not (stem.isdigit() and stem in number):
            raise BigprepError(f"the model file holds a member skops names {name!r}, which "
                               "this version of bigprep does not know; update bigprep.")
        arrays.append((f"{number[stem]}{dot}{ext}", data))
    return timeless_zip(sorted(arrays) + [("schema.json", schema.encode())])


# The only types a bigprep model file may hold; anything else is refused.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")


def load_model(model_dir: str):
    """(model, spec, envelope); refuses other versions, changed files, unknown types."""
    import skops.io as sio

    if not os.path.isdir(model_dir):
        raise BigprepError(f"{model_dir}: not a bigprep model folder (no such folder); "
                           "train one first.")
    envelope = load_envelope(os.path.join(model_dir, "model.json"), "train", "model",
                             param=None)
    path = os.path.join(model_dir, str(envelope.payload.get("model_file", "model.skops")))
    try:
        with open(path, "rb") as fh:
            blob = fh.read()
    except OSError as exc:
        raise BigprepError(f"{model_dir}: not a bigprep model folder ({exc}); train one "
                           "first.") from None
    payload = envelope.payload
    try:
        spec = FeatureSpec.from_dict(payload["features"])
    except (KeyError, TypeError) as exc:
        raise BigprepError(f"{model_dir}: model.json is incomplete or was edited ({exc}); "
                           "train it again.") from None
    if hashlib.sha256(blob).hexdigest() != payload.get("sha256"):
        raise BigprepError(f"{path}: the file changed since it was saved (checksum differs); "
                           "refusing to load it. Train again or restore the original.")
    try:
        untrusted = sio.get_untrusted_types(data=blob)
    except Exception as exc:  # noqa: BLE001 - a damaged file of any kind is refused
        raise BigprepError(f"{path}: not a readable skops file ({exc}).") from None
    unknown = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if unknown:
        raise BigprepError(f"{path}: holds types bigprep does not trust ({', '.join(unknown)}); "
                           "refusing to load it.")
    model = sio.loads(blob, trusted=untrusted)
    return model, spec, envelope
