"""An operator's PostgreSQL without pgvector: the run command and ``manage.py migrate`` stop
with the fix named, and change nothing in the database.

The server is real: a copy of the embedded PostgreSQL's installation (pgserver's
``pginstall``: bin/, lib/, share/) with pgvector's files deleted, initialised in a
temporary folder and listening on a free port of 127.0.0.1, as an operator's server would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.processes import free_port, run_command_against
from webapp.launcher import BASE_DIR
from webapp.vector_extension import MISSING

TABLES = "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"


def run_as(user: str | None, *command: str | Path) -> None:
    subprocess.run([str(part) for part in command], user=user, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def postgres_without_pgvector() -> Iterator[str]:
    """The URL of a database named parley on a real PostgreSQL that has no pgvector."""
    import pgserver
    from pgserver.utils import ensure_user_exists

    package = Path(pgserver.__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="parley-no-pgvector-") as folder:
        root = Path(folder)
        root.chmod(0o755)  # the server's own user must reach its programs and data
        # The same layout as in site-packages: the programs find their libraries by a
        # path relative to themselves (pgserver.libs beside the package).
        install = root / "pgserver" / "pginstall"
        shutil.copytree(package / "pginstall", install, symlinks=True, ignore=shutil.ignore_patterns("include"))
        if (package.parent / "pgserver.libs").exists():
            (root / "pgserver.libs").symlink_to(package.parent / "pgserver.libs")
        pgvector = [
            install / "share" / "postgresql" / "extension" / "vector.control",
            *(install / "share" / "postgresql" / "extension").glob("vector--*.sql"),
            install / "lib" / "postgresql" / "vector.so",
        ]
        for path in pgvector:
            path.unlink()  # fails if pgserver stopped shipping it, which would make this test moot

        user = None
        data = root / "data"
        data.mkdir()
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root; pgserver uses this user too
            user = "pgserver"
            entry = ensure_user_exists(user)
            assert entry is not None
            os.chown(data, entry.pw_uid, entry.pw_gid)
        bin_dir = install / "bin"
        run_as(user, bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=utf8")
        port = free_port()
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
        run_as(user, bin_dir / "pg_ctl", "-D", data, "-l", data / "log", "-o", options, "-w", "start")
        try:
            url = f"postgres://postgres@127.0.0.1:{port}/parley"
            with psycopg.connect(f"postgres://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
                conn.execute("CREATE DATABASE parley")
            yield url
        finally:
            run_as(user, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")


def unchanged(url: str) -> tuple[int, list[str]]:
    """The tables in the database and the extensions created in it."""
    with psycopg.connect(url) as conn:
        tables = conn.execute(TABLES).fetchone()
        extensions = [row[0] for row in conn.execute("SELECT extname FROM pg_extension ORDER BY extname")]
        return (tables[0] if tables else -1), extensions


def test_the_copy_is_a_working_server_without_the_extension(postgres_without_pgvector: str) -> None:
    with psycopg.connect(postgres_without_pgvector) as conn:
        assert conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'plpgsql'").fetchone()
        assert not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        with pytest.raises(psycopg.errors.FeatureNotSupported, match='extension "vector" is not available'):
            conn.execute("CREATE EXTENSION vector")


def test_the_run_command_stops_naming_the_fix_and_changes_nothing(
    postgres_without_pgvector: str, tmp_path: Path
) -> None:
    result = run_command_against(postgres_without_pgvector, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert f"parley: {MISSING}" in result.stdout
    assert "CREATE EXTENSION vector" in result.stdout
    assert unchanged(postgres_without_pgvector) == (0, ["plpgsql"])


def test_migrate_stops_naming_the_fix_before_it_creates_any_table(
    postgres_without_pgvector: str, tmp_path: Path
) -> None:
    env = {**os.environ, "DATABASE_URL": postgres_without_pgvector, "PARLEY_VAR_DIR": str(tmp_path), "DEBUG": "1"}
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"], env=env, cwd=BASE_DIR, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert f"parley: configuration error: {MISSING}" in result.stderr
    assert unchanged(postgres_without_pgvector) == (0, ["plpgsql"])
