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
