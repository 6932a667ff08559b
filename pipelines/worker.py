"""Entry point of local Beam worker processes (``--workers N``): Beam's own SDK harness,
with its per-bundle INFO chatter kept off the terminal while fimpack's progress lines stay.
Everything still reaches the runner through the Fn logging service."""
import logging
import sys

NOISE = ("apitools not found", "No semi_persistent_directory found")


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
