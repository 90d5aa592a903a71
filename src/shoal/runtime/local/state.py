"""The runtime's small records on disk (process groups, app uids, database password generations).

Each is one JSON file that must survive ``kill -9`` whole: written beside itself, flushed to disk,
then renamed over the old one, so a reader finds either the old record or the new, never half.
Mode 0600 in a 0700 dir: the records name uids and pids, which apps have no business reading.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_record(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
