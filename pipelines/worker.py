"""Entry point of local Beam worker processes (``--workers N``): Beam's own SDK harness,
with its per-bundle INFO chatter kept off the terminal while fimpack's progress lines stay.
Everything still reaches the runner through the Fn logging service."""
import ctypes
import logging
import os
import sys
import threading
import time

NOISE = ("apitools not found", "No semi_persistent_directory found")


def malloc_arenas() -> str:
    """glibc's cap on malloc arenas for the build's processes: the user's MALLOC_ARENA_MAX,
    else 2. glibc's default (8 per core) lets each of a worker's threads keep freed memory in
    its own arena; capped, a two-worker build of 141 MB of sdists peaked lower at the same
    speed (BENCHMARKS.md, "Every core, every byte once")."""
    return os.environ.get("MALLOC_ARENA_MAX") or "2"


TRIM_CHECK_S = 0.5  # how often an idle-mode trimmer looks
DRIVER_TRIM_S = 1.0  # how often FnApiRunner's driver trims (measured: no cost beyond noise)
IDLE_CPU = 0.25     # below this share of a core over a look, the process is idle
_trimming: list = []  # the one trimmer thread of this process, once started


def trim_freed_memory(when_idle: bool, every: float = TRIM_CHECK_S) -> bool:
    """Hand the heap's free pages back to the OS (glibc's ``malloc_trim(0)``, from a daemon
    thread; ctypes releases the GIL during the call): every EVERY seconds, or, WHEN_IDLE,
    once each time the process falls idle after work (less than IDLE_CPU of a core since the
    last look, busy before). Once per process; False where the C library has no
    ``malloc_trim`` (not glibc).

    Freed memory otherwise stays resident. FnApiRunner's driver frees each stage's
    collections once the stages that read them ran, and its peak comes while it moves
    data between stages, so it trims on the clock. A worker frees its bundle's memory when
    the bundle ends; trimming it while a stage runs made the build ~6% slower (the pages a
    running stage takes again fault back in), so it trims when idle, between stages
    (BENCHMARKS.md, "Where the memory sits")."""
    if _trimming:
        return True
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: macOS, musl
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int

    def loop():
        busy, last = False, time.process_time()
        while True:
            time.sleep(every)
            trim_now, busy = trim_step(when_idle, busy, time.process_time() - last, every)
            if trim_now:
                trim(0)
            last = time.process_time()  # the trim's own CPU is not work

    _trimming.append(threading.Thread(target=loop, name="malloc-trim", daemon=True))
    _trimming[0].start()
    return True


def trim_step(when_idle: bool, busy: bool, cpu_s: float, every: float) -> tuple[bool, bool]:
    """One look of the trimmer, CPU_S seconds of CPU used since the last: (trim now?, busy)."""
    if not when_idle:
        return True, busy
    if cpu_s > IDLE_CPU * every:
        return False, True
    return busy, False


class _ProgressOnly(logging.Filter):
    def filter(self, record):
        if record.name.startswith("fimpack"):
            return True
        return record.levelno >= logging.WARNING and not record.getMessage().startswith(NOISE)


if __name__ == "__main__":
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(_ProgressOnly())
    logging.getLogger().addHandler(handler)  # basicConfig in the harness becomes a no-op
    trim_freed_memory(when_idle=True)
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)
