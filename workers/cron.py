"""The cron table for `rq cron workers.cron` (run exactly one such process: it has no lock).

Entries here only fan out; the jobs they start use deterministic job ids and database keys,
so a doubled cron tick changes nothing.
"""
from rq import cron

from workers import periodic, rating, switch_cdrs, usage_reports

cron.register(periodic.check_ledgers, queue_name="default", cron="17 * * * *", name="check-ledgers")

# Calls the AMI watcher stored but did not rate at once; job id per minute (workers/rating.py).
cron.register(rating.enqueue_rating, queue_name="default", cron="* * * * *", name="rate-pending-calls")

# Calls that ended while no watcher followed the switch, from its own CDRs (docs/asterisk.md).
cron.register(switch_cdrs.enqueue_switch_reconcile, queue_name="default", cron="* * * * *",
              name="reconcile-switch-cdrs")

# Automatic usage reports whose day, week or month has ended in the account's zone.
cron.register(usage_reports.enqueue_usage_reports, queue_name="default", cron="5 * * * *",
              name="usage-reports")
