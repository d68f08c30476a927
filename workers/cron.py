"""The cron table for `rq cron workers.cron` (run exactly one such process: it has no lock).

Entries here only fan out; the jobs they start use deterministic job ids and database keys,
so a doubled cron tick changes nothing.
"""
from rq import cron

from workers import billing, invoicing, notifications, payments, periodic, rating, switch_cdrs, usage_reports

cron.register(periodic.check_ledgers, queue_name="default", cron="17 * * * *", name="check-ledgers")

# Calls the AMI watcher stored but did not rate at once; job id per minute (workers/rating.py).
cron.register(rating.enqueue_rating, queue_name="default", cron="* * * * *", name="rate-pending-calls")

# Calls that ended while no watcher followed the switch, from its own CDRs (docs/asterisk.md).
cron.register(switch_cdrs.enqueue_switch_reconcile, queue_name="default", cron="* * * * *",
              name="reconcile-switch-cdrs")

# Automatic usage reports whose day, week or month has ended in the account's zone.
cron.register(usage_reports.enqueue_usage_reports, queue_name="default", cron="5 * * * *",
              name="usage-reports")

# Billing cycle (docs/billing-cycle.md): every 10 minutes, one run per tenant and current period
# (autorefill, then users, numbers and extras); job ids charge-run-<tenant>-<period>, unique.
# A period starts at midnight in each account's own time zone, hence the short interval.
cron.register(billing.enqueue_period_runs, queue_name="default", cron="*/10 * * * *", name="billing-period-runs")

# Invoices and statements (docs/invoicing.md): five minutes after each charge-run tick, one run
# per tenant and closed period (postpaid invoices, prepaid statements); job ids
# invoice-run-<tenant>-<period>, unique. A period closes at midnight in each account's zone.
cron.register(invoicing.enqueue_invoice_runs, queue_name="default", cron="5-59/10 * * * *", name="invoice-runs")

# Balance and expiry alerts (app/notifications/alerts.py): once per crossing, then by schedule.
cron.register(notifications.enqueue_alert_sweep, queue_name="default", cron="*/5 * * * *", name="alert-sweep")

# Receipts of credited payments: woken after each credit; this catches one whose wake was lost.
cron.register(payments.send_receipts, queue_name="default", cron="*/5 * * * *", name="payment-receipts")
