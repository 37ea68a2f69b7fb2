"""The launcher's answers to an operator's mistakes: one clear line each."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.processes import free_port, process_env
from webapp.launcher import BASE_DIR, LauncherError, check_database, check_port_free, run_lock, web_processes


def test_a_port_in_use_is_named_with_what_to_do() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LauncherError, match=f"port {port} on 127.0.0.1 is already in use.*PARLEY_PORT={port + 1}"):
            check_port_free("127.0.0.1", port)


def test_a_stale_lock_from_a_killed_run_is_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "parley.pid").write_text(str(dead.pid))
    with run_lock(tmp_path, "parley"):
        assert (tmp_path / "parley.pid").read_text() == str(os.getpid())
    assert "removed a stale lock" in capsys.readouterr().out
    assert not (tmp_path / "parley.pid").exists()


def test_a_live_lock_refuses_a_second_run(tmp_path: Path) -> None:
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "parley.pid").write_text(str(alive.pid))
        with pytest.raises(LauncherError, match=f"already running from this folder \\(pid {alive.pid}\\)"):
            run_lock(tmp_path, "parley").__enter__()
    finally:
        alive.kill()


def test_an_unreachable_database_url_is_one_clear_line() -> None:
    with pytest.raises(LauncherError, match=r"cannot reach the database at 127\.0\.0\.1 named by DATABASE_URL"):
        check_database("postgres://nobody:secret@127.0.0.1:1/parley")


def test_run_with_an_unreachable_database_prints_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/parley",
        "PARLEY_VAR_DIR": str(tmp_path),
        "SECRET_KEY": "k" * 50,
        "PARLEY_PORT": "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "webapp.launcher", "run"], env=env, cwd=BASE_DIR, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "parley: cannot reach the database" in result.stdout


def test_production_mode_without_a_secret_key_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": "postgres://x@127.0.0.1:1/p", "PARLEY_VAR_DIR": str(tmp_path)}
    env.pop("SECRET_KEY", None)
    env.pop("DEBUG", None)
    env["PARLEY_PORT"] = "0"
    result = subprocess.run(
        [sys.executable, "-m", "webapp.launcher", "run"], env=env, cwd=BASE_DIR, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "parley: SECRET_KEY is not set" in result.stdout


def test_one_web_process_per_core_up_to_four(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARLEY_WEB_PROCESSES", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(2)))
    assert web_processes() == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert web_processes() == 4
    monkeypatch.setenv("PARLEY_WEB_PROCESSES", "6")
    assert web_processes() == 6


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_a_bad_number_of_web_processes_is_refused_before_anything_starts(tmp_path: Path, raw: str) -> None:
    env = {**os.environ, "PARLEY_VAR_DIR": str(tmp_path), "PARLEY_WEB_PROCESSES": raw, "PARLEY_PORT": "0"}
    env.pop("DATABASE_URL", None)  # else an embedded PostgreSQL would be started first
    result = subprocess.run(
        [sys.executable, "-m", "webapp.launcher", "run"], env=env, cwd=BASE_DIR, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"parley: PARLEY_WEB_PROCESSES={raw!r} is not a whole number of 1 or more." in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []  # no database, no Redis, no lock


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.django_db
def test_the_procfiles_web_line_serves_from_that_many_processes_and_stops_them_all() -> None:
    from honcho.environ import parse_procfile

    command = parse_procfile((BASE_DIR / "Procfile").read_text()).processes["web"]
    port = free_port()
    env = process_env(PARLEY_HOST="127.0.0.1", PARLEY_PORT=str(port), PARLEY_WEB_PROCESSES="2")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # as honcho runs it: through a shell, in a session of its own
    web = subprocess.Popen(["/bin/sh", "-c", command], env=env, cwd=BASE_DIR, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        family = [web.pid]
        for pid in family:
            family.extend(_children(pid))
        servers = [pid for pid in family if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(servers) == 2
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in family):
        time.sleep(0.1)
    assert not [pid for pid in family if Path(f"/proc/{pid}").exists()]
