"""`safeguard demo` as a person starts it: it prints the sandbox page's URL, the bot answers
there, and a declaration typed in the page's command box opens an incident channel."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.support import wait_for

pytestmark = pytest.mark.e2e

LEAD = "U0LEAD001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_starts_the_workspace_and_the_bot(tmp_path):
    exe = Path(sys.executable).parent / "safeguard"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "runtime.cli"]
    page_port, bot_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SAFEGUARD_", "DATABASE_URL"))}
    proc = subprocess.Popen(
        [*command, "demo", "--port", str(page_port), "--bot-port", str(bot_port),
         "--database", f"sqlite:///{tmp_path / 'demo.db'}"],
        cwd=tmp_path, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        page = wait_for(lambda: next((ln.split("open ")[1].split()[0] for ln in lines if " open http" in ln), None),
                        30, what=f"the demo's URL (output: {lines})")
        assert page == f"http://127.0.0.1:{page_port}/"
        assert httpx.get(f"http://127.0.0.1:{bot_port}/healthz", timeout=5).json()["ok"] is True
        assert "<html" in httpx.get(page, timeout=5).text.lower()

        typed = httpx.post(page + "_sandbox/ui/command", timeout=10, json={
            "user": LEAD, "channel": "C0OPS0001", "text": "/incident declare csam-report Demo drill 1"})
        assert typed.status_code == 200 and typed.json()["ok"], typed.text

        def channel():
            state = httpx.get(page + "_sandbox/ui/state", params={"user": LEAD}, timeout=5).json()
            return next((c for c in state["channels"] if c["name"] == "inc-1-csam-report"), None)

        made = wait_for(channel, 15, what="the incident channel")
        assert made["is_private"] and made["is_member"]
        assert (tmp_path / "demo.db").exists()
        # the line that points the CLI at the demo's database
        assert f"DATABASE_URL=sqlite:///{tmp_path / 'demo.db'} safeguard timeline INC-1" in "".join(lines)
        # a mention typed in the page's box, as in Slack: `@Lena` reaches the bot as <@U0LEGAL01|lena>
        typed = httpx.post(page + "_sandbox/ui/command", timeout=10, json={
            "user": LEAD, "channel": made["id"], "text": "/incident assign legal @Lena"})
        assert "already holds" in typed.json()["summary"], typed.text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, "".join(lines)
    assert "Traceback" not in "".join(lines)
