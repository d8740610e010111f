"""Where files live: local paths or any fsspec URL (s3://, gs://, abfs://, file://).

Storage options (endpoint, credentials profile, anonymous access) come from the
environment — the cloud libraries read their own variables, e.g. AWS_ENDPOINT_URL,
AWS_PROFILE — or from ``--storage-option KEY=VALUE``; never from code.
"""

from __future__ import annotations

import json
import os

from ..errors import BigprepError, UsageError

ENV = "BIGPREP_STORAGE_OPTIONS"  # JSON object, e.g. {"endpoint_url": "http://..."}


def is_remote(path: str) -> bool:
    """True for a URL that is not a local file.

    >>> is_remote("s3://bucket/a.parquet"), is_remote("data/a.parquet"), is_remote("file:///x")
    (True, False, False)
    """
    return "://" in str(path) and not str(path).startswith("file://")


def local(path: str) -> str:
    return str(path).removeprefix("file://")


def options_from(pairs: tuple[str, ...] = ()) -> dict:
    """Storage options: ``$BIGPREP_STORAGE_OPTIONS`` (JSON), then KEY=VALUE pairs.

    >>> options_from(("anon=true", "endpoint_url=http://127.0.0.1:9000"))
    {'anon': True, 'endpoint_url': 'http://127.0.0.1:9000'}
    """
    options = {}
    if os.environ.get(ENV):
        try:
            loaded = json.loads(os.environ[ENV])
        except json.JSONDecodeError as exc:
            raise BigprepError(f"${ENV} is not a JSON object ({exc}).") from None
        if not isinstance(loaded, dict):
            raise BigprepError(f"${ENV} is {type(loaded).__name__} JSON, not an object; use "
                               'e.g. {"endpoint_url": "http://127.0.0.1:9000"}.')
        options.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"`storage_options` {pair}: use KEY=VALUE, e.g. "
                               "endpoint_url=http://127.0.0.1:9000")
        lowered = value.lower()
        options[key] = True if lowered == "true" else False if lowered == "false" else value
    return options


def filesystem(url: str, options: dict):
    """(fsspec filesystem, path within it) for a URL."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:
        raise BigprepError(f"{url}: cannot open this kind of storage ({exc}). For s3:// "
                           "install the extra: pip install 'bigprep[s3]'.") from None


def url(fs, path: str) -> str:
    """A path from ``fs`` back as a URL with its protocol."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if "://" in path else f"{protocol}://{path}"


def open_input(path: str, options: dict, mode: str = "rb"):
    if not is_remote(path):
        return open(local(path), mode)
    fs, inner = filesystem(path, options)
    return fs.open(inner, mode)


def exists(path: str, options: dict) -> bool:
    if not is_remote(path):
        return os.path.exists(local(path))
    fs, inner = filesystem(path, options)
    return fs.exists(inner)


def upload(tmp: str, final: str, options: dict) -> None:
    """Put a complete local file at a remote key: the object appears whole or not at all
    (one PUT, or a multipart upload that only becomes visible when completed)."""
    fs, inner = filesystem(final, options)
    fs.put_file(tmp, inner)
