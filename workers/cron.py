"""The cron table for `rq cron workers.cron` (run exactly one such process: it has no lock).

Entries here only fan out; the jobs they start use deterministic job ids and database keys,
so a doubled cron tick changes nothing.
"""
from rq import cron

from workers import periodic

cron.register(periodic.check_ledgers, queue_name="default", cron="17 * * * *", name="check-ledgers")
