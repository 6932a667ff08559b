"""What fimpack changes in Beam's local runner, and the failure each change prevents."""
import threading
import time

from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.runners.worker import data_plane

from fimpack.pipelines.runners import no_timed_flush_on_runner_streams


def _send_slowly(channel, chunks: int, seconds: float, chunk: int = 1 << 20) -> tuple[int, bool]:
    """Write CHUNKS whole chunks over SECONDS into a bundle's input stream, as FnApiRunner's
    BundleManager does, while a slow worker drains the channel; (bytes delivered, end seen)."""
    got = {"bytes": 0, "last": False}

    def worker():
        for elements in channel._write_outputs():
            for d in elements.data:
                got["bytes"] += len(d.data)
                if d.is_last:
                    got["last"] = True
                    return
            time.sleep(0.2)  # a busy worker: the runner's flush blocks meanwhile

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    out = channel.output_stream("bundle", "read")
    payload = b"x" * chunk
    for _ in range(chunks):
        out.write(payload)
        time.sleep(seconds / chunks)
    out.close()
    t.join(60)
    return got["bytes"], got["last"]


def test_runner_side_streams_deliver_every_chunk_written_during_a_slow_flush():
    # Beam 2.77's default (1000 ms) flushes from a background thread and clears chunks that
    # are written while it waits on the worker: this scenario lost 12 MiB of 300 upstream.
    no_timed_flush_on_runner_streams()
    channel = data_plane._GrpcDataChannel(worker_handlers.DATA_BUFFER_TIME_LIMIT_MS)
    assert not isinstance(data_plane._GrpcDataChannel(worker_handlers.DATA_BUFFER_TIME_LIMIT_MS)
                          .output_stream("probe", "read"),
                          data_plane.TimeBasedBufferingClosableOutputStream)
    delivered, ended = _send_slowly(channel, chunks=200, seconds=2.5)
    assert ended
    assert delivered == 200 << 20


def test_local_workers_start_with_the_malloc_arena_cap(monkeypatch):
    """Two or more FnApiRunner workers start through a shell command that caps glibc's malloc
    arenas (2 unless the user set MALLOC_ARENA_MAX), and run fimpack's worker entry point."""
    import logging

    from apache_beam.options.pipeline_options import PipelineOptions

    from fimpack.pipelines.runners import local_runner

    monkeypatch.setattr(logging.getLogger(), "level", logging.WARNING)  # the quiet worker path
    for user, want in ((None, "2"), ("4", "4")):
        if user is None:
            monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
        else:
            monkeypatch.setenv("MALLOC_ARENA_MAX", user)
        runner = local_runner(PipelineOptions([]), 2)
        command = runner._default_environment.command_string
        assert command.startswith(f"MALLOC_ARENA_MAX={want} ")
        assert command.endswith("-m fimpack.pipelines.worker")


def test_trimmer_trims_on_the_clock_or_once_per_fall_into_idle():
    """The driver's trimmer trims at every look; a worker's only at the first look after it
    worked and then used under IDLE_CPU of a core (between stages), never while it works."""
    from fimpack.pipelines.worker import IDLE_CPU, trim_step

    every = 0.5
    work, rest = every, IDLE_CPU * every / 2  # CPU seconds used since the last look
    assert [trim_step(False, False, cpu, every)[0] for cpu in (work, rest, rest)] == [True] * 3
    busy, trims = False, []
    for cpu in (rest, work, work, rest, rest, work, rest):
        trim, busy = trim_step(True, busy, cpu, every)
        trims.append(trim)
    assert trims == [False, False, False, True, False, False, True]


def test_trimmer_starts_one_thread_per_process():
    import threading

    from fimpack.pipelines.worker import trim_freed_memory

    assert trim_freed_memory(when_idle=True) and trim_freed_memory(when_idle=False)
    assert [t.name for t in threading.enumerate()].count("malloc-trim") == 1
