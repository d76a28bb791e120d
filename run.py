#!/usr/bin/env python3
"""Set up and run Safeguard on a fresh machine with only Python 3.11+.

    python3 run.py demo     # the sandbox workspace and the bot, on SQLite
    python3 run.py test     # the whole test suite (SQLite and PostgreSQL)
    python3 run.py bench    # the benchmarks

Each creates (or refreshes) the virtual environment .venv from pyproject.toml first.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (run.py may be started by an older python3)
        sys.exit("Safeguard needs Python 3.11 or newer.")
    stamp = VENV / f".installed-{extras or 'base'}"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and PY.exists():
        return
    if not PY.exists():
        print("Creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    target = f".[{extras}]" if extras else "."
    print(f"Installing safeguard-bot{f'[{extras}]' if extras else ''} into .venv …", flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "-e", target], check=True, cwd=ROOT)
    stamp.write_text(wanted)


def postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def ensure_postgres() -> None:
    """The PostgreSQL tests need a server on 127.0.0.1:5432; start the local cluster if it is down."""
    if postgres_up() or not shutil.which("pg_ctlcluster") or not Path("/etc/postgresql").is_dir():
        return
    for version in sorted(os.listdir("/etc/postgresql")):
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)


def ensure_chromium() -> None:
    """The timeline page is tested in a real headless Chromium (Debian's package)."""
    if shutil.which("chromium") or os.environ.get("SAFEGUARD_SKIP_BROWSER"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing Debian's chromium for the browser test …", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
                       check=False, env=env, stdout=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "demo":
        ensure_venv("")
        return subprocess.call([str(BIN / "safeguard"), "demo", *rest], cwd=ROOT)
    if command == "test":
        ensure_venv("test")
        ensure_postgres()
        ensure_chromium()
        # The suite starts the bot in a fresh process about a hundred times (kills, restarts, the
        # CLI); with PYTHONDONTWRITEBYTECODE set (some machines set it) each one compiles the whole
        # project again, 0.6 s of CPU. Compile once, and let the processes use the caches.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([str(PY), "-m", "compileall", "-q", "-j", "0", "-x", r"[/\\]\.venv[/\\]", "."],
                       cwd=ROOT, env=env, check=False, stdout=subprocess.DEVNULL)
        if rest:
            return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT, env=env)
        # Everything in parallel but the few tests that time something, which then run alone:
        # the other worker's load must not decide whether ten clicks fit in a second.
        # Three workers on two cores: the end-to-end tests mostly wait on HTTP and the database,
        # but on a slow machine a fourth starved the bots of CPU and they missed Slack's 3 s ack.
        # The few heavy tests (1,000-match pipelines, SIGKILL runs, 500 timers on three replicas)
        # share one worker (`xdist_group("heavy")`): two at once starved the others' bots of CPU
        # and made them miss Slack's 3 s acknowledgement deadline on a slow machine.
        code = subprocess.call([str(PY), "-m", "pytest", "-n", "3", "--dist", "loadgroup", "-m", "not timing"],
                               cwd=ROOT, env=env)
        timing = subprocess.call([str(PY), "-m", "pytest", "-m", "timing"], cwd=ROOT, env=env)
        return code or timing
    if command == "bench":
        ensure_venv("test")
        code = 0
        for script in ("ack.py", "timers.py", "timeline.py", "report.py", "intake.py"):
            print(f"== bench/{script}", flush=True)
            code |= subprocess.call([str(PY), str(ROOT / "bench" / script)], cwd=ROOT)
        return code
    print(__doc__)
    return 0 if command == "help" else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
