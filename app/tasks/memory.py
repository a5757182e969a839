"""Pool processes hand the memory a task freed back to the system when the task ends.

glibc keeps freed blocks in its heaps for reuse, up to twice the largest block it recently unmapped: after a large
evaluation, 50-70 MB that an idle worker no longer used, and that the next upload's peak stood on. `malloc_trim`
returns them (a few milliseconds; the next task faults those pages in again). Without glibc nothing is done.
"""

import ctypes
import functools
import logging
from collections.abc import Callable

from celery import signals

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to hand back this way
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def give_back_freed_memory() -> bool:
    """Return the heaps' free memory to the system; whether the C library could be asked."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@signals.task_postrun.connect
def after_each_task(**_) -> None:
    try:
        give_back_freed_memory()
    except Exception:  # only an optimisation: never fail a task over it
        log.exception("could not hand freed memory back")
