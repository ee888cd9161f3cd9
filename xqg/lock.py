"""An exclusive lock on a profile's work folder, saying who holds it.

Two runs of one profile in one checkout would resume, append to and replace each other's
artefacts. `exclusive` takes an advisory ``flock`` on ``<work>/.lock`` (released by the kernel
when the holder exits, even on SIGKILL, so a lock is never stale) and writes the holder's pid,
host, command and start time into the file for the next comer's error message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path


class Locked(RuntimeError):
    """The lock is held by another process."""


@contextlib.contextmanager
def exclusive(path: Path, what: str) -> Iterator[None]:
    """Hold the lock at `path` for the block, or raise `Locked` naming its holder at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            raise Locked(
                f"{what} is in use by {holder}; wait for it to finish or stop it (lock: {path})"
            ) from None
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} ({command}, since {since})\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock
