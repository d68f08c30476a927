"""`flask agi serve` with AGI_PROCESSES=2 (workers/agi/run.py `supervise`): the real command in a
subprocess on the test database and Redis, called over the AGI protocol. Each worker decides
calls on its own (the other one stopped), a worker that dies is replaced, SIGTERM stops all."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.agi.client import call
from tests.ami.db_harness import calling_account

ROOT = Path(__file__).resolve().parents[2]
UK = "442071234567"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def served(app, tmp_path):
    port = _free_port()
    env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=app.config["REDIS_URL"],
               AGI_HOST="127.0.0.1", AGI_PORT=str(port), AGI_PROCESSES="2", PYTHONPATH=str(ROOT))
    log = (tmp_path / "agi.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "agi", "serve"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        assert _wait(lambda: len(_children(proc.pid)) == 2), "two workers"
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()
        print((tmp_path / "agi.log").read_text(errors="replace")[-3000:])   # shown when the test fails


def _ready(port, endpoint):
    try:
        return call(port, "outbound", (endpoint, UK), extension=UK, timeout=5).variables.get("RL_DECISION")
    except OSError:
        return None


def _calls(port, endpoint, n=12):
    results = []

    def one():
        results.append(call(port, "outbound", (endpoint, UK), extension=UK, timeout=10).variables["RL_DECISION"])
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return results


def test_two_worker_processes_decide_on_one_port(served, make_tenant, make_account):
    proc, port = served
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    endpoint = exts[0][1]
    assert _wait(lambda: _ready(port, endpoint)) == "ALLOW"
    first, second = sorted(_children(proc.pid))
    for paused, working in ((first, second), (second, first)):      # each worker alone serves every call
        os.kill(paused, signal.SIGSTOP)
        try:
            assert _calls(port, endpoint) == ["ALLOW"] * 12
        finally:
            os.kill(paused, signal.SIGCONT)
    os.kill(first, signal.SIGKILL)                                    # a dead worker is replaced
    replaced = _wait(lambda: (lambda c: c if len(c) == 2 and first not in c else None)(_children(proc.pid)))
    assert replaced and second in replaced
    assert _calls(port, endpoint) == ["ALLOW"] * 12
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)                                  # stops the workers and itself
    assert proc.wait(15) == 0
    assert _wait(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), 10)
