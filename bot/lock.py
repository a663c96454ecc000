"""One careerbot process polls and delivers per database: a second would send duplicates."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.errors import StoreError


@contextmanager
def exclusive(database: Path) -> Iterator[None]:
    """Hold ``DATABASE.lock`` for the duration; refuse if another process holds it."""
    path = database.with_name(database.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as err:
        raise StoreError(f"cannot create lock file {str(path)!r}: {err.strerror}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StoreError(
                f"{database} is in use by another careerbot (pid {holder}); "
                "stop it or use another database"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
