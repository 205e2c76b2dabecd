"""Files written whole or not at all: write beside the target, then rename over it.

A reader (another thread, a retried job, SageMaker's upload at the end of a job) never sees
half a file, and a write that fails leaves the previous file as it was.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> write_json_atomic(folder / "answer.json", {"status": "succeeded"})
>>> (folder / "answer.json").read_text()
'{\\n  "status": "succeeded"\\n}\\n'
>>> with atomic_path(folder / "scene.bin") as partial:
...     _ = partial.write_bytes(b"all of it")
>>> sorted(path.name for path in folder.iterdir())
['answer.json', 'scene.bin']
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` that replaces ``target`` when the block succeeds.

    The temporary name keeps the target's suffix (image and archive writers choose their
    format by it) and is unique, so two writers of one target never share it. When the
    block raises, the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.partial{target.suffix}")
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def write_atomic(target: Path, data: bytes | str, mode: int | None = None) -> None:
    """Write ``data`` (text as UTF-8) to ``target`` atomically; ``mode`` sets its permissions first."""
    with atomic_path(target) as partial:
        partial.write_bytes(data.encode() if isinstance(data, str) else data)
        if mode is not None:
            partial.chmod(mode)


def write_json_atomic(target: Path, value: Any, mode: int | None = None) -> None:
    """``value`` as indented JSON with a final newline, written atomically."""
    write_atomic(target, json.dumps(value, indent=2) + "\n", mode)
