"""The launcher's answers to an operator's mistakes: one clear line each."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import run_command_against
from webapp.launcher import BASE_DIR, LauncherError, check_database, check_port_free, check_redis, run_lock

SECRET = "s3cret-Pa55"


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
    result = run_command_against("postgres://nobody@127.0.0.1:1/parley", tmp_path)
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


def test_an_unreachable_server_is_named_without_its_password() -> None:
    with pytest.raises(LauncherError) as database:
        check_database(f"postgres://parley:{SECRET}@127.0.0.1:1/parley")
    with pytest.raises(LauncherError) as redis:
        check_redis(f"redis://:{SECRET}@127.0.0.1:1/0")
    assert SECRET not in str(database.value) + str(redis.value)
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0 named by REDIS_URL" in str(redis.value)


@pytest.mark.django_db
def test_run_prints_no_password_of_the_database_or_redis(tmp_path: Path) -> None:
    from tests.processes import database_url

    base = {**os.environ, "PARLEY_VAR_DIR": str(tmp_path), "SECRET_KEY": "k" * 50, "PARLEY_PORT": "0"}
    unreachable_database = {**base, "DATABASE_URL": f"postgres://parley:{SECRET}@127.0.0.1:1/parley"}
    # The test database answers, so the run gets as far as Redis.
    unreachable_redis = {**base, "DATABASE_URL": database_url(), "REDIS_URL": f"redis://:{SECRET}@127.0.0.1:1/0"}
    for env, said in [(unreachable_database, "cannot reach the database"), (unreachable_redis, "redis://:***@")]:
        result = subprocess.run(
            [sys.executable, "-m", "webapp.launcher", "run"], env=env, cwd=BASE_DIR, capture_output=True, text=True
        )
        assert result.returncode == 1
        assert said in result.stdout
        assert SECRET not in result.stdout + result.stderr


def test_a_password_a_process_prints_is_masked_in_the_runs_output() -> None:
    line = f"celery: connected to redis://:{SECRET}@cache.internal:6379/1"
    processes = {"worker": f"{sys.executable} -c {shlex.quote(f'print({line!r})')}"}
    script = (
        "import os, sys; from webapp import launcher; "
        f"sys.exit(launcher.run_processes({processes!r}, dict(os.environ)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(BASE_DIR)}, cwd=BASE_DIR,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "celery: connected to redis://:***@cache.internal:6379/1" in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_the_run_starts_one_generation_worker_per_model() -> None:
    from honcho.environ import parse_procfile

    from inference.config import default_registry, read_registry
    from webapp.launcher import with_a_worker_per_model

    processes = parse_procfile((BASE_DIR / "Procfile").read_text()).processes
    # one model, as on a fresh install: the Procfile as it is
    assert with_a_worker_per_model(processes, default_registry()) == processes
    registry = read_registry(
        '{"models": [{"name": "small", "kind": "local"}, {"name": "team llama", "kind": "openai",'
        ' "base_url": "http://gpu:8000/v1", "model": "llama", "context_length": 8192}]}'
    )
    expanded = with_a_worker_per_model(processes, registry)
    assert "generation" not in expanded
    assert expanded["generation-1"] == "python manage.py generation_worker --model small"
    assert expanded["generation-2"] == "python manage.py generation_worker --model 'team llama'"
    assert {name: line for name, line in expanded.items() if not name.startswith("generation")} == {
        name: line for name, line in processes.items() if name != "generation"
    }
