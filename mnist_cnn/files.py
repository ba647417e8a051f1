"""Files written safely (a temp file, then a rename) and identified by their SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks, as 64 hex digits."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomically(data: object, path: Path) -> Path:
    """Write JSON to a temp file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def history_path(model_path: Path) -> Path:
    """The per-epoch training history of a model (a .keras or its export): named after it so
    two models can share a folder."""
    return Path(model_path).with_name(f"{Path(model_path).stem}_history.json")
