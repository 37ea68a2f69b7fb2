"""``./parley run | tee run.log`` and Ctrl-C: tee dies first, and the run still stops every process.

The launcher's process manager runs in a process of its own, as ``./parley run`` runs it,
with two stand-ins for Parley's processes that print all the time (one of them ignores
SIGTERM, as a stuck worker would). Its stdout (and, in the second case, its stderr) is a
pipe whose reader closes; then its process group gets the SIGINT of Ctrl-C, as from a
terminal. It must exit as after any Ctrl-C, without a traceback, leaving none of the
processes it started: neither the stand-ins nor honcho's helpers that relay their output.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.waiting import wait_for
from webapp.launcher import BASE_DIR

CHILD = """
import os, signal, sys, time
pid_dir, kind = sys.argv[1], sys.argv[2]
if kind == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: (print("stopping", flush=True), sys.exit(0)))
open(os.path.join(pid_dir, str(os.getpid())), "w").close()
while True:
    print(kind, "is working", flush=True)
    time.sleep(0.02)
"""

LAUNCHER = """
import json, os, sys
from webapp import launcher
processes = json.loads(sys.argv[1])
sys.exit(launcher.guarded(lambda: launcher.run_processes(processes, dict(os.environ))))
"""


def pids_in(folder: Path, count: int) -> list[int] | None:
    pids = [int(path.name) for path in folder.iterdir()]
    return pids if len(pids) == count else None


def output_of(pid: int) -> str:
    """Where the process's stdout goes now."""
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/fd/1")
    return ""


def _stat(pid: int) -> list[str]:
    """State, parent, group, … of a process (/proc/PID/stat after the name); [] when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return []


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be reaped."""
    stat = _stat(pid)
    return bool(stat) and stat[0] != "Z"


def in_group(group: int) -> list[int]:
    """The running processes of a process group."""
    pids = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    return [pid for pid in pids if (stat := _stat(pid)) and stat[0] != "Z" and stat[2] == str(group)]


@pytest.mark.parametrize("stderr_too", [False, True], ids=["stdout piped", "stdout and stderr piped"])
def test_ctrl_c_after_the_pipe_closed_stops_every_process(tmp_path: Path, stderr_too: bool) -> None:
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    processes = {kind: f"{sys.executable} {child} {pid_dir} {kind}" for kind in ("web", "stubborn")}
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as error_file:
        launcher = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, json.dumps(processes)],
            cwd=BASE_DIR,
            env={**os.environ, "PYTHONPATH": str(BASE_DIR)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if stderr_too else error_file,
            start_new_session=True,  # its own group, as a terminal's foreground job is
        )
    started: list[int] = []
    try:
        assert launcher.stdout is not None
        assert b"started (pid=" in launcher.stdout.readline() + launcher.stdout.readline()
        started = wait_for(lambda: pids_in(pid_dir, 2), 30, "both processes to start")
        launcher.stdout.close()  # tee is gone; the next line the launcher prints hits a closed pipe
        # The launcher's next print finds the pipe closed (its stand-ins print every 20 ms).
        wait_for(lambda: launcher.poll() is not None or output_of(launcher.pid) == os.devnull, 10, "a print")
        os.killpg(launcher.pid, signal.SIGINT)  # Ctrl-C
        assert launcher.wait(timeout=30) == 130
        wait_for(lambda: not any(running(pid) for pid in started), 10, "every process to stop")
        wait_for(lambda: not in_group(launcher.pid), 10, "honcho's helpers to exit")
    finally:  # whatever happened, leave nothing running
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
    if not stderr_too:
        assert "Traceback" not in errors.read_text(), errors.read_text()
