"""The CDR writer's queue (workers/ami/cdr_writer.py): what arrives during a write forms the next batch."""
import threading

import pytest

from workers.ami.cdr_writer import CdrWriter


def test_a_lone_cdr_is_written_at_once_and_those_arriving_meanwhile_together():
    writing, release, batches = threading.Event(), threading.Event(), []

    def write(records):
        batches.append([r["uniqueid"] for r in records])
        writing.set()
        release.wait(5)

    writer = CdrWriter(write, max_batch=4)
    first = writer.submit({"uniqueid": "1"})
    assert writing.wait(5)                       # written alone, without waiting for company
    later = [writer.submit({"uniqueid": str(n)}) for n in range(2, 8)]
    release.set()
    for done in [first, *later]:
        assert done.result(5) is None
    writer.close()
    assert batches == [["1"], ["2", "3", "4", "5"], ["6", "7"]]   # at most max_batch at a time


def test_a_failed_batch_fails_each_of_its_cdrs_and_the_next_batch_still_runs():
    calls = []

    def write(records):
        calls.append(len(records))
        if len(calls) == 1:
            raise RuntimeError("database gone")

    writer = CdrWriter(write)
    with pytest.raises(RuntimeError, match="database gone"):
        writer.submit({"uniqueid": "1"}).result(5)
    assert writer.submit({"uniqueid": "2"}).result(5) is None
    writer.close()
    with pytest.raises(RuntimeError):            # after close: refused, not left waiting
        writer.submit({"uniqueid": "3"}).result(1)
    assert calls == [1, 1]


def test_call_records_reads_full_and_partial_cdrs_and_skips_those_it_cannot_store(caplog):
    from datetime import datetime, timedelta, timezone

    from app.rating.cdr import CallRecord
    from workers.ami.cdr_writer import call_records

    start = datetime(2026, 11, 22, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    full = {"server": "pbx1", "uniqueid": "1.1", "linkedid": "1.1", "channel": "PJSIP/1000-1", "accountcode": "111",
            "extension": "1000", "destination": "4930123456", "start": start, "answer": start + timedelta(seconds=2),
            "end": start + timedelta(seconds=62), "duration": 62, "billsec": 60, "disposition": "ANSWERED"}
    partial = {"uniqueid": "1.2", "accountcode": "222", "start": 1_700_000_000}      # no end, no answer...
    skipped = [dict(full, accountcode="999"), dict(full, accountcode=""), dict(full, uniqueid="")]
    with caplog.at_level("WARNING", logger="ringledger.ami.cdrs"):
        by_tenant = call_records([full, *skipped, partial], {"111": (11, 1), "222": (22, 2)})
    assert by_tenant == {
        1: [CallRecord(11, "pbx1", "1.1", "4930123456", datetime(2026, 11, 22, 9, 0), 60, datetime(2026, 11, 22, 9, 0, 2),
                       datetime(2026, 11, 22, 9, 1, 2), "ANSWERED", "1000", "1.1")],
        2: [CallRecord(22, "", "1.2", "", datetime(2023, 11, 14, 22, 13, 20), 0)]}
    reasons = [r.getMessage() for r in caplog.records]
    assert len(reasons) == 3
    assert "unknown account 999" in reasons[0] and "no account code" in reasons[1] and "no uniqueid" in reasons[2]


def test_utc_naive_turns_each_kind_of_time_into_naive_utc():
    from datetime import datetime, timedelta, timezone

    from workers.ami.cdr_writer import utc_naive

    naive = datetime(2026, 11, 22, 9, 0, 0, 250_000)
    assert utc_naive(None) is None
    assert utc_naive(naive) is naive
    assert utc_naive(naive.replace(tzinfo=timezone.utc)) == naive
    assert utc_naive(datetime(2026, 11, 22, 4, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=-5)))) == naive
    assert utc_naive(1_700_000_000) == datetime(2023, 11, 14, 22, 13, 20)
    assert utc_naive(1_700_000_000.5) == datetime(2023, 11, 14, 22, 13, 20, 500_000)


def test_call_records_carry_the_carrier_of_the_cdr():
    from datetime import datetime

    from workers.ami.cdr_writer import call_records

    base = {"server": "pbx1", "uniqueid": "5.1", "accountcode": "111", "destination": "4930123456",
            "start": datetime(2026, 11, 22, 9), "end": datetime(2026, 11, 22, 9, 1), "billsec": 60}
    by_tenant = call_records([dict(base, carrier="3"), dict(base, uniqueid="5.2", carrier="x"),
                              dict(base, uniqueid="5.3")], {"111": (11, 1)})
    assert [c.carrier_id for c in by_tenant[1]] == [3, None, None]
