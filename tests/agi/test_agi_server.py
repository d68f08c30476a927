"""The FastAGI session layer itself (workers/agi/server.py) over real TCP, with routes of the
test's own: answers parsed as panoramisk parses them, lines split or joined anyhow by TCP,
`100 Trying`, usage errors, HANGUP, oversized headers, many sessions at once."""
import asyncio
import socket
import threading
import time

import pytest
from panoramisk.utils import parse_agi_result

from workers.agi.server import AgiHangup, SafeApplication, parse_result, start


@pytest.mark.parametrize("line", [
    "200 result=0", "200 result=1", "200 result=-1", "200 result=", "200 result=123456",
    "200 result=1 (timeout)", "200 result= (timeout)", "200 result=0 (hangup)", "200 result=49 endpos=12345",
    "200 result=1(speech)", "100 result=0 Trying...", "510 Invalid or unknown command",
    "520-Invalid command syntax.  Proper usage follows:", "HANGUP", "garbage", "200 result=\t1",
])
def test_fast_parse_is_panoramisks_parse(line):
    def outcome(parse):
        try:
            return parse(line)
        except Exception as exc:          # panoramisk raises on a line without a code
            return type(exc)
    assert outcome(parse_result) == outcome(parse_agi_result)


class Server:
    """SafeApplication with one route recording what its commands got back."""

    def __init__(self, route, **options):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.results, self.errors = [], []

        async def up():
            app = SafeApplication(**options)

            async def recorded(request):
                try:
                    await route(request, self.results)
                except AgiHangup as exc:
                    self.errors.append(str(exc))
                    raise
            app.add_route("t", recorded)
            return app, await start(app, "127.0.0.1", 0)
        self.app, self.server = asyncio.run_coroutine_threadsafe(up(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    def sessions(self):
        return asyncio.run_coroutine_threadsafe(_get(self.app), self.loop).result(5)

    def wait_sessions(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self.sessions() < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.sessions()

    def stop(self):
        async def down():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(down(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def _get(app):
    return app.sessions


@pytest.fixture
def serve():
    started = []

    def make(route, **options):
        server = Server(route, **options)
        started.append(server)
        return server
    yield make
    for server in started:
        server.stop()


def _connect(port, headers=b"agi_network_script: t\nagi_arg_1: x\n\n"):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if headers:
        sock.sendall(headers)
    return sock, sock.makefile("rb")


def test_each_command_gets_its_own_answer_however_tcp_cuts_the_lines(serve):
    async def route(request, results):
        assert request.headers["agi_arg_1"] == "x"
        for n in range(4):
            results.append(await request.send_command(f"SET VARIABLE N {n}"))
    s = serve(route)
    sock, reader = _connect(s.port)
    assert reader.readline() == b"SET VARIABLE N 0\n"
    sock.sendall(b"200 res")                    # an answer in two pieces
    time.sleep(0.05)
    sock.sendall(b"ult=7\n")
    assert reader.readline() == b"SET VARIABLE N 1\n"
    sock.sendall(b"200 result=8\r\n200 result=9\n")   # CRLF, and the next answer early in one segment
    assert reader.readline() == b"SET VARIABLE N 2\n"
    assert reader.readline() == b"SET VARIABLE N 3\n"
    sock.sendall(b"200 result=1 (timeout)\n")
    assert reader.readline() == b""            # the route ended: the server closes
    assert [r["result"] for r in s.results] == [("7", ""), ("8", ""), ("9", ""), ("1", "timeout")]
    assert s.wait_sessions(1) == 1


def test_trying_is_skipped_and_a_usage_error_keeps_its_next_line(serve):
    async def route(request, results):
        results.append(await request.send_command("EXEC Dial x"))
        results.append(await request.send_command("BAD COMMAND"))
    s = serve(route)
    sock, reader = _connect(s.port)
    reader.readline()
    sock.sendall(b"100 result=0 Trying...\n200 result=0\n")
    reader.readline()
    sock.sendall(b"520-Invalid command syntax.  Proper usage follows:\nUsage: whatever\n")
    assert reader.readline() == b""
    assert s.results[0] == {"status_code": 200, "result": ("0", ""), "msg": ""}
    assert s.results[1]["error"] == "AGIUsageError" and s.results[1]["msg"].endswith("Usage: whatever\n")


def test_a_hangup_notice_ends_the_session(serve):
    async def route(request, results):
        results.append(await request.send_command("STREAM FILE x \"\""))
        results.append(await request.send_command("SET VARIABLE never 1"))
    s = serve(route)
    sock, reader = _connect(s.port)
    reader.readline()
    sock.sendall(b"HANGUP\n")
    assert reader.readline() == b""
    assert s.results == [] and s.errors == ["channel hung up"]


def test_headers_byte_by_byte_and_oversized_headers(serve):
    async def route(request, results):
        results.append(dict(request.headers))
    s = serve(route)
    sock, reader = _connect(s.port, headers=b"")
    for byte in b"agi_network_script: t\nagi_arg_1: slow\n\n":
        sock.sendall(bytes([byte]))
    assert reader.readline() == b""
    assert s.results == [{"agi_network_script": "t", "agi_arg_1": "slow"}]
    big, big_reader = _connect(s.port, headers=b"agi_x: " + b"9" * (SafeApplication.max_header_bytes + 10))
    assert big_reader.readline() == b""         # closed without waiting for the timeout
    assert s.wait_sessions(2) == 2 and len(s.results) == 1


def test_an_unknown_script_is_closed(serve):
    async def route(request, results):
        results.append("ran")
    s = serve(route)
    sock, reader = _connect(s.port, headers=b"agi_network_script: elsewhere\n\n")
    assert reader.readline() == b""
    assert s.results == [] and s.wait_sessions(1) == 1


def test_a_silent_channel_is_timed_out_while_others_are_served(serve):
    async def route(request, results):
        results.append(await request.send_command("SET VARIABLE X 1"))
    s = serve(route, command_timeout=0.5, header_timeout=0.5)
    mute, mute_reader = _connect(s.port)
    assert mute_reader.readline() == b"SET VARIABLE X 1\n"          # never answered
    half, half_reader = _connect(s.port, headers=b"agi_network_script: t\n")   # headers never end
    started = time.monotonic()
    for _ in range(20):                                               # meanwhile, calls go through
        sock, reader = _connect(s.port)
        reader.readline()
        sock.sendall(b"200 result=0\n")
        assert reader.readline() == b""
        sock.close()
    assert mute_reader.readline() == b"" and half_reader.readline() == b""
    assert time.monotonic() - started < 3
    assert s.errors == ["no answer: TimeoutError"]
    assert s.wait_sessions(22) == 22


def test_many_sessions_at_once(serve):
    async def route(request, results):
        for n in range(3):
            await request.send_command(f"SET VARIABLE N {n}")
        results.append(request.headers["agi_arg_1"])
    s = serve(route)

    def one(n):
        sock, reader = _connect(s.port, headers=f"agi_network_script: t\nagi_arg_1: {n}\n\n".encode())
        while reader.readline():
            sock.sendall(b"200 result=0\n")
        sock.close()
    threads = [threading.Thread(target=one, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(s.results, key=int) == [str(n) for n in range(40)]
