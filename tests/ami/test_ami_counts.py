"""In-use counts in a real Redis (DB 9, keys under a per-test prefix)."""
import asyncio

import redis
import redis.asyncio as aioredis

from tests.ami.harness import REDIS_URL
from workers.ami.calls import CallTracker
from workers.ami.counts import CountsPublisher, InUseCounts, account_in_use


def with_counts(prefix, scenario):
    async def main():
        client = aioredis.from_url(REDIS_URL)
        try:
            await scenario(InUseCounts(client, f"{prefix}:inuse"))
        finally:
            await client.aclose()
    asyncio.run(main())


def test_counts_are_summed_across_servers(redis_prefix):
    async def scenario(counts):
        await counts.update("pbx1", {"100001": 2, "100002": 1}, {"1001": 1})
        await counts.update("pbx2", {"100001": 3}, {"1001": 1, "2001": 4})
        assert await counts.account("100001") == 5
        assert await counts.account("100003") == 0
        assert await counts.extensions() == {"1001": 2, "2001": 4}
    with_counts(redis_prefix, scenario)


def test_a_zero_count_removes_the_field(redis_prefix):
    async def scenario(counts):
        await counts.update("pbx1", {"100001": 2, "100002": 1}, {})
        await counts.update("pbx1", {"100001": 0}, {})
        assert await counts.of_server("pbx1") == {"100002": 1}
    with_counts(redis_prefix, scenario)


def test_replacing_a_servers_share_is_idempotent_and_leaves_other_servers_alone(redis_prefix):
    async def scenario(counts):
        await counts.update("pbx1", {"100001": 2, "100009": 7}, {"1001": 2})
        await counts.update("pbx2", {"100001": 1}, {})
        for _ in range(2):
            await counts.replace("pbx1", {"100001": 1}, {"1001": 1})
        assert await counts.of_server("pbx1") == {"100001": 1}
        assert await counts.accounts() == {"100001": 2}
        assert await counts.extension("1001") == 1
    with_counts(redis_prefix, scenario)


def test_a_server_whose_watcher_stopped_touching_its_heartbeat_no_longer_counts(redis_prefix):
    async def scenario(counts):
        await counts.update("pbx1", {"100001": 2}, {})
        await counts.update("pbx2", {"100001": 1}, {})
        await counts.redis.delete(counts.key("pbx2", "alive"))  # as if its TTL ran out
        assert await counts.account("100001") == 2
    with_counts(redis_prefix, scenario)


def test_web_processes_read_the_same_total_with_a_plain_redis_client(redis_prefix):
    async def scenario(counts):
        await counts.update("pbx1", {"100001": 2}, {})
        await counts.update("pbx2", {"100001": 3}, {})
    with_counts(redis_prefix, scenario)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert account_in_use(client, "100001", prefix=f"{redis_prefix}:inuse") == 5
    finally:
        client.close()


def test_call_attempts_are_counted_per_account_and_second(redis_prefix):
    async def scenario(counts):
        assert [await counts.attempts("100001", 1000.2) for _ in range(3)] == [1, 2, 3]
        assert await counts.attempts("100001", 1001.0) == 1
        assert await counts.attempts("100002", 1000.5) == 1
    with_counts(redis_prefix, scenario)


def test_the_publisher_writes_the_latest_counts_of_a_burst_and_rebuilds_on_demand(redis_prefix):
    async def scenario(counts):
        tracker = CallTracker("pbx1")
        publisher = CountsPublisher(counts, "pbx1", tracker)
        for i in range(50):
            uid = f"1.{i}"
            tracker.feed({"Event": "Newchannel", "Channel": f"PJSIP/1001-{i:08x}",
                          "AccountCode": "100001", "Uniqueid": uid}, 0.0)
            tracker.admit(uid)
            publisher.changed()
            if i % 2:
                tracker.feed({"Event": "Hangup", "Uniqueid": uid}, 1.0)
                publisher.changed()
        assert await publisher.synced()
        assert await counts.of_server("pbx1") == {"100001": 25}
        assert await counts.of_server("pbx1", "extension") == {"1001": 25}
        await counts.update("pbx1", {"999999": 4}, {})            # stale leftovers
        publisher.rebuild()
        assert await publisher.synced()
        assert await counts.of_server("pbx1") == {"100001": 25}
    with_counts(redis_prefix, scenario)
