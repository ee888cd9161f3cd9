"""Start a Jupyter kernel that dies with the process that started it.

Jupyter starts kernels in a session of their own, so killing `make` (or the papermill process)
leaves the kernel running, and writing, until it notices its parent is gone. The pipeline's
kernels are started through this module instead: on Linux it asks the kernel to receive SIGKILL
the moment its parent dies (``prctl(PR_SET_PDEATHSIG)``, kept across ``exec``), then becomes the
kernel. Elsewhere it only execs the kernel.

    python -m xqg.kernel_guard -- <kernel command ...>
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None) -> None:
    """Receive SIGKILL when the parent process dies; exit now if it already has (`parent` is the
    pid that started us, when known)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if parent is not None and os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> None:
    """Exec the command after ``--`` with the parent-death signal set."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        raise SystemExit("usage: python -m xqg.kernel_guard -- <command ...>")
    die_with_parent(int(os.environ["JPY_PARENT_PID"]) if "JPY_PARENT_PID" in os.environ else os.getppid())
    os.execvp(args[0], args)


if __name__ == "__main__":
    main()
