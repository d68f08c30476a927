"""Every Procfile line really starts (web answers HTTP; the others keep running or exit cleanly)."""
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TestConfig

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _procfile():
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(name, tmp_path, port):
    env = {**os.environ, "PORT": str(port), "AGI_PORT": str(port), "AGI_HOST": "127.0.0.1", "WEB_CONCURRENCY": "1", "REDIS_URL": TestConfig.REDIS_URL,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'proc.db'}", "PATH": f"{BIN}:{os.environ['PATH']}"}
    # Each process starts against a migrated database, as after `flask db upgrade` in a deploy.
    subprocess.run([str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    command = os.path.expandvars(_procfile()[name].strip().replace("${", "$").replace("}", ""))
    for var, value in (("$PORT", str(port)), ("$REDIS_URL", env["REDIS_URL"]), ("$WEB_CONCURRENCY", "1")):
        command = command.replace(var, value)
    command = command.replace(":-8000", "").replace(":-4", "")
    return subprocess.Popen(shlex.split(command), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.stdout.read()


def test_the_procfile_names_the_five_processes():
    assert set(_procfile()) == {"web", "worker", "cron", "ami", "agi"}


def test_the_web_process_serves_http(app, tmp_path):
    port = _free_port()
    proc = _start("web", tmp_path, port)
    try:
        deadline = time.time() + 20
        status = None
        while time.time() < deadline and status is None:
            try:
                resp = urllib.request.urlopen(f"http://127.0.0.1:{port}/portal/login", timeout=2)
                status = resp.status
            except OSError:
                time.sleep(0.3)
        assert status == 200
    finally:
        _stop(proc)


@pytest.mark.parametrize("name", ["worker", "cron", "ami"])
def test_the_background_processes_start(app, tmp_path, name):
    proc = _start(name, tmp_path, _free_port())
    time.sleep(4)
    code = proc.poll()
    output = _stop(proc)
    assert code in (None, 0), output
    assert "Traceback" not in output, output


def test_the_agi_process_answers_fastagi_on_its_port(app, tmp_path):
    from tests.agi.client import call

    port = _free_port()
    proc = _start("agi", tmp_path, port)
    try:
        deadline, session = time.time() + 20, None
        while time.time() < deadline and session is None:
            try:
                session = call(port, "outbound", ("nobody", "442071234567"), timeout=5)
            except OSError:
                time.sleep(0.3)
        assert session is not None, _stop(proc)
        assert session.variables["RL_CAUSE"] == "unknown_account" and session.hung_up
    finally:
        _stop(proc)
