"""Bench the AMI watcher through the fake Asterisk, which runs in its own process like a switch.

    .venv/bin/python bench/ami.py [--calls 10000] [--accounts 20] [--calls-per-account 10]
                                  [--read-chunk 16384]

1. flood: realistic call event sequences (15 events per call, ~300 calls live at once, each
   call admitted, counted in Redis, given deadlines, ended with one CDR) -> events/s handled.
2. cutoff: 200 answered prepaid calls on 20 accounts whose shared credit runs out at different
   times -> deadline-to-Hangup latency as received by the switch (p50/p95/p99/max) and the
   total overshoot in seconds and money; once on a quiet link, once under a full-speed flood.
3. reconnection: 200 answered calls whose deadlines pass while the link is down -> latency
   from the reconciliation snapshot to each Hangup received (target p99 <= 250 ms).
Prints figures; asserts nothing. Uses Redis DB 9 under a unique prefix, removed afterwards.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import pathlib
import platform
import sys
import time
import uuid
from collections import defaultdict
from decimal import Decimal

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import redis.asyncio as aioredis  # noqa: E402

from tests.ami.fake_server import FakeAsterisk, encode  # noqa: E402
from workers.ami.policy import AccountTerms, InMemoryPolicy  # noqa: E402
from workers.ami.watcher import AsteriskServer, Watcher, WatchSettings  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/9"
PRICE = Decimal("0.01")          # per second (0.60 a minute)
FLOOD_ACCOUNTS = [f"9{n:05d}" for n in range(20)]
EVENTS_PER_CALL = 15


# ---- the switch process ------------------------------------------------------------------
def flood_events(calls: int, first: int) -> list[bytes]:
    """Call lifecycles interleaved so ~300 calls are live at once."""
    def leg(i, name, uid, linkedid, state, account):
        return {"Channel": name, "ChannelState": state,
                "ChannelStateDesc": "Up" if state == "6" else "Ring",
                "CallerIDNum": "1001", "CallerIDName": "<unknown>", "Language": "en",
                "AccountCode": account, "Context": "from-customer", "Exten": "442071234567",
                "Priority": "1", "Uniqueid": uid, "Linkedid": linkedid}

    def phases(i):
        account = FLOOD_ACCOUNTS[i % len(FLOOD_ACCOUNTS)]
        a_name, b_name = f"PJSIP/f{i % 500}-{i:08x}", f"PJSIP/trunk-{i:08x}"
        a_uid, b_uid = f"9{i}.1", f"9{i}.2"
        a = lambda state: leg(i, a_name, a_uid, a_uid, state, account)  # noqa: E731
        b = lambda state: leg(i, b_name, b_uid, a_uid, state, account)  # noqa: E731
        start = [{"Event": "Newchannel", **a("4")},
                 {"Event": "VarSet", **a("4"), "Variable": "RATE", "Value": "x"},
                 {"Event": "Newexten", **a("4"), "Application": "Dial"},
                 {"Event": "DialBegin", **a("4"), "DestExten": "442071234567"},
                 {"Event": "Newchannel", **b("4")}]
        answer = [{"Event": "Newstate", **b("6")}, {"Event": "Newstate", **a("6")},
                  {"Event": "DialEnd", **a("6"), "DialStatus": "ANSWER"},
                  {"Event": "BridgeEnter", **a("6"), "BridgeUniqueid": f"br{i}"},
                  {"Event": "BridgeEnter", **b("6"), "BridgeUniqueid": f"br{i}"}]
        end = [{"Event": "BridgeLeave", **a("6")}, {"Event": "BridgeLeave", **b("6")},
               {"Event": "Hangup", **b("6"), "Cause": "16"},
               {"Event": "Hangup", **a("6"), "Cause": "16"},
               {"Event": "Cdr", "AccountCode": account, "Channel": a_name,
                "BillableSeconds": "30", "Disposition": "ANSWERED", "UniqueID": a_uid}]
        return [encode(e) for e in start], [encode(e) for e in answer], [encode(e) for e in end]

    lifecycles = [phases(first + i) for i in range(calls)]
    out: list[bytes] = []
    for i in range(calls + 300):
        if i < calls:
            out += lifecycles[i][0]
        if 0 <= i - 100 < calls:
            out += lifecycles[i - 100][1]
        if 0 <= i - 300 < calls:
            out += lifecycles[i - 300][2]
    return out


async def switch(conn) -> None:
    loop = asyncio.get_running_loop()
    async with FakeAsterisk() as ami:
        conn.send(ami.port)
        prepared: list[bytes] = []
        background: asyncio.Task | None = None
        while True:
            command, arg = await loop.run_in_executor(None, conn.recv)
            if command == "prepare":             # build the flood before the clock starts
                prepared = flood_events(*arg)
                conn.send(len(prepared))
            elif command == "flood":
                await ami.flood(prepared)
                conn.send(time.time())
            elif command == "flood_in_background":
                background = loop.create_task(ami.flood(prepared))
                conn.send(None)
            elif command == "flood_done":
                await background
                conn.send(None)
            elif command == "calls":             # [(name, account)] -> uniqueids
                conn.send([ami.new_channel(n, account=a, exten="442071234567") for n, a in arg])
            elif command == "answer":            # answers spread over `arg[1]` seconds
                names, spread = arg
                for name in names:
                    ami.answer(name)
                    await asyncio.sleep(spread / len(names))
                conn.send(time.time())
            elif command == "live":
                conn.send(len(ami.channels))
            elif command == "hangups":
                conn.send([(a["Channel"], a.at) for a in ami.actions("Hangup")])
            elif command == "drop":              # the link breaks; the switch refuses for a while
                ami.refuse_connections = True
                ami.drop_connections()
                conn.send(time.time())
            elif command == "allow":
                ami.refuse_connections = False
                conn.send(time.time())
            elif command == "snapshots":         # when each CoreShowChannels reached the switch
                conn.send([a.at for a in ami.actions("CoreShowChannels")])
            elif command == "stop":
                conn.send(None)
                return


def switch_process(conn) -> None:
    asyncio.run(switch(conn))


class Switch:
    """The watcher-side handle on the switch process (blocking pipe calls in a thread)."""

    def __init__(self):
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=switch_process, args=(child,), daemon=True)
        self.process.start()
        self.port = self.conn.recv()

    async def ask(self, command: str, arg=None):
        self.conn.send((command, arg))
        return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)


# ---- the watcher side --------------------------------------------------------------------
class RecordingPolicy(InMemoryPolicy):
    """Remembers every deadline it hands out, to measure how late the Hangups are."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadline_log: dict[str, list[tuple[float, float]]] = defaultdict(list)

    def deadlines(self, account_number, live_calls, now):
        result = super().deadlines(account_number, live_calls, now)
        stamp = time.time()
        for key, deadline in result.items():
            if deadline is not None:
                self.deadline_log[key].append((stamp, deadline))
        return result


def percentile(sorted_values: list[float], p: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def settle(watcher: Watcher) -> None:
    await asyncio.gather(*(p.synced(10) for p in watcher.publishers.values()))
    while watcher.pending_tasks:
        await asyncio.sleep(0.005)


async def bench_flood(switch: Switch, watcher: Watcher, policy, calls: int, first: int,
                      label: str = "flood") -> None:
    link = next(iter(watcher.links.values()))
    total = await switch.ask("prepare", (calls, first))
    before, cdrs_before = link.events, sum(len(a.cdrs) for a in policy.accounts.values())
    started, cpu = time.time(), time.process_time()
    written = await switch.ask("flood")
    while link.events < before + total:
        await asyncio.sleep(0.002)
    handled = time.time()
    await settle(watcher)
    settled, cpu = time.time(), time.process_time() - cpu
    cdrs = sum(len(a.cdrs) for a in policy.accounts.values()) - cdrs_before
    print(f"{label}: {total:,} events ({calls:,} calls x {EVENTS_PER_CALL}) handled in "
          f"{handled - started:.2f} s = {total / (handled - started):,.0f} events/s "
          f"(switch done writing after {written - started:.2f} s; admissions, Redis counts and "
          f"deadlines settled +{(settled - handled) * 1000:.0f} ms; {cdrs:,} CDRs, "
          f"{watcher.refusals} refusals)\n"
          f"  watcher CPU {cpu:.2f} s = {total / cpu:,.0f} events per CPU-second "
          f"(what one free core sustains, whatever else loads the box)")


def record_hangups_sent(watcher: Watcher) -> dict[str, float]:
    """Note when the watcher writes each Hangup (to tell its own delay from the wire's)."""
    sent: dict[str, float] = {}
    for link in watcher.links.values():
        def send(action, _send=link.send):
            if action.get("Action") == "Hangup":
                sent.setdefault(action["Channel"], time.time())
            return _send(action)
        link.send = send
    return sent


def spread(values: list[float]) -> str:
    ms = sorted(x * 1000 for x in values)
    return (f"p50 {percentile(ms, 50):.1f} ms, p95 {percentile(ms, 95):.1f} ms, "
            f"p99 {percentile(ms, 99):.1f} ms, max {ms[-1]:.1f} ms")


async def bench_cutoff(switch: Switch, watcher: Watcher, policy: RecordingPolicy, round_: int,
                       accounts: int, per_account: int, under_flood: bool,
                       sent: dict[str, float]) -> None:
    server = next(iter(watcher.links))
    numbers = [f"{round_}{k:05d}" for k in range(accounts)]
    for k, number in enumerate(numbers):
        talk = 2.0 + 0.1 * k   # seconds the shared credit lasts with every call up
        policy.accounts[number] = AccountTerms(
            number, balance=PRICE * per_account * Decimal(str(talk)), price_per_second=PRICE)
    legs = [(f"PJSIP/{number}{c:02d}-{round_:02d}{k:02d}{c:04x}", number)
            for k, number in enumerate(numbers) for c in range(per_account)]
    uids = await switch.ask("calls", legs)
    key_of = {name: f"{server}/{uid}" for (name, _), uid in zip(legs, uids)}
    await asyncio.sleep(0.3)
    await settle(watcher)
    if under_flood:
        await switch.ask("prepare", (15_000, 10_000_000 * round_))
        await switch.ask("flood_in_background")
    await switch.ask("answer", ([name for name, _ in legs], 0.5))
    deadline = time.time() + 30
    while await switch.ask("live") and time.time() < deadline:
        await asyncio.sleep(0.1)
    if under_flood:
        await switch.ask("flood_done")
    hangups = {name: at for name, at in await switch.ask("hangups") if name in key_of}
    late, late_sent = [], []
    for name, at in hangups.items():
        given = [d for stamp, d in policy.deadline_log[key_of[name]] if stamp < at]
        late.append(at - given[-1])
        late_sent.append(sent[name] - given[-1])
    overshoot = sum(max(0.0, x) for x in late)
    label = "under a full-speed flood" if under_flood else "quiet link"
    print(f"cutoff, {label}: {len(legs)} calls on {accounts} accounts, {len(hangups)} hung up\n"
          f"  deadline -> Hangup received by the switch: {spread(late)}\n"
          f"  deadline -> Hangup written by the watcher: {spread(late_sent)}\n"
          f"  overshoot {overshoot:.3f} s in total ({overshoot / len(late) * 1000:.1f} ms a "
          f"call) = {PRICE * Decimal(str(round(overshoot, 6))):.4f} at {PRICE}/s")


async def bench_reconnect(switch: Switch, watcher: Watcher, policy: RecordingPolicy, round_: int,
                          accounts: int, per_account: int) -> None:
    """Calls whose deadlines pass while the link is down: hung up once reconciliation finds
    them. Latency from the snapshot request reaching the switch to each Hangup received."""
    server = next(iter(watcher.links))
    link = watcher.links[server]
    numbers = [f"{round_}{k:05d}" for k in range(accounts)]
    for k, number in enumerate(numbers):
        policy.accounts[number] = AccountTerms(number, balance=PRICE * per_account * Decimal("1.0"),
                                               price_per_second=PRICE)
    legs = [(f"PJSIP/{number}{c:02d}-{round_:02d}{k:02d}{c:04x}", number)
            for k, number in enumerate(numbers) for c in range(per_account)]
    await switch.ask("calls", legs)
    await asyncio.sleep(0.3)
    await settle(watcher)
    await switch.ask("answer", ([name for name, _ in legs], 0.2))
    await asyncio.sleep(0.2)
    reconciled = link.reconciliations
    await switch.ask("drop")                     # deadlines (about 1 s) pass while it is down
    await asyncio.sleep(2.0)
    await switch.ask("allow")
    deadline = time.time() + 30
    while link.reconciliations <= reconciled and time.time() < deadline:
        await asyncio.sleep(0.01)
    while await switch.ask("live") and time.time() < deadline:
        await asyncio.sleep(0.05)
    snapshot = (await switch.ask("snapshots"))[-1]
    names = {name for name, _ in legs}
    hangups = [at for name, at in await switch.ask("hangups") if name in names]
    print(f"cutoff after a reconnection: {len(legs)} calls overdue while the link was down, "
          f"{len(hangups)} hung up\n"
          f"  snapshot asked -> Hangup received by the switch: {spread([at - snapshot for at in hangups])}")


async def main(args) -> None:
    prefix = f"ami-bench:{uuid.uuid4().hex[:8]}"
    client = aioredis.from_url(REDIS_URL)
    switch = Switch()
    watcher = None
    try:
        settings = WatchSettings(counts_prefix=f"{prefix}:inuse",
                                 balance_channel=f"{prefix}:balance",
                                 read_chunk=args.read_chunk)
        policy = RecordingPolicy(
            [AccountTerms(n, balance=Decimal("1e9"), price_per_second=PRICE)
             for n in FLOOD_ACCOUNTS], in_use=lambda n: 0)
        watcher = Watcher([AsteriskServer("bench", "127.0.0.1", switch.port, "ringledger",
                                          "s3cret")], policy, client, settings)
        await watcher.start()
        link = watcher.links["bench"]
        while link.reconciliations < 1:
            await asyncio.sleep(0.01)
        print(f"AMI watcher bench: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.1f}, fake Asterisk in its own process, "
              f"read_chunk {args.read_chunk // 1024} KiB, Redis {REDIS_URL}")
        await bench_flood(switch, watcher, policy, 2_000, 0, label="warm-up")
        await bench_flood(switch, watcher, policy, args.calls, 1_000_000)
        sent = record_hangups_sent(watcher)
        await bench_cutoff(switch, watcher, policy, 1, args.accounts, args.calls_per_account,
                           under_flood=False, sent=sent)
        await bench_cutoff(switch, watcher, policy, 2, args.accounts, args.calls_per_account,
                           under_flood=True, sent=sent)
        await bench_reconnect(switch, watcher, policy, 3, args.accounts, args.calls_per_account)
    finally:
        if watcher is not None:
            await watcher.stop()
        await switch.ask("stop")
        switch.process.join(5)
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--calls-per-account", type=int, default=10)
    parser.add_argument("--read-chunk", type=int, default=WatchSettings.read_chunk,
                        help="bytes read per loop turn (asyncio's own default: 262144)")
    asyncio.run(main(parser.parse_args()))
