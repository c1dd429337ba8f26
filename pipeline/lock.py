"""One run at a time per output directory (per --metadata-dir when one is
given: the lock lives with ML Metadata, in a local folder).

Two pipeline runs sharing an output directory would share one SQLite ML
Metadata store and one checkpoint folder; the second one refuses at once
instead. The lock is an OS file lock, so it is released when the holder
exits, even when it is killed.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Iterator

from components.common.errors import ClipflowError

LOCK_FILE = ".clipflow.lock"


class OutputDirBusy(ClipflowError):
    """Another run holds the output directory."""


@contextlib.contextmanager
def exclusive(output_dir: str) -> Iterator[None]:
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, LOCK_FILE), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise OutputDirBusy(
                f"another clipflow run (pid {holder}) is using {output_dir}; wait for it to finish or choose another "
                "--output-dir (--metadata-dir, if given)"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
