"""Entry point of local Beam worker processes (``--workers N``): Beam's own SDK harness,
with its per-bundle INFO chatter kept off the terminal while fimpack's progress lines stay.
Everything still reaches the runner through the Fn logging service."""
import logging
import os
import sys

NOISE = ("apitools not found", "No semi_persistent_directory found")


def malloc_arenas() -> str:
    """glibc's cap on malloc arenas for the build's processes: the user's MALLOC_ARENA_MAX,
    else 2. glibc's default (8 per core) lets each of a worker's threads keep freed memory in
    its own arena; capped, a two-worker build of 141 MB of sdists peaked lower at the same
    speed (BENCHMARKS.md, "Every core, every byte once")."""
    return os.environ.get("MALLOC_ARENA_MAX") or "2"


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
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)
