"""Files written safely (a temp file, then a rename) and identified by their SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow is imported by the caller that has a picture to save
    from PIL import Image, PngImagePlugin


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


def write_png_atomically(
    image: Image.Image, path: Path, info: PngImagePlugin.PngInfo | None = None
) -> None:
    """Save a PNG (with the text chunks of `info`) to a temp file beside `path`, then rename:
    no half-written picture."""
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp, path)


def history_path(model_path: Path) -> Path:
    """The per-epoch training history of a model (a .keras or its export): named after it so
    two models can share a folder."""
    return Path(model_path).with_name(f"{Path(model_path).stem}_history.json")
