"""AMI watcher: live calls from Asterisk -> limits, in-use counts, prepaid cutoff, CDRs.

Modules: calls (pure call-state tracker), counts (Redis in-use counts), policy (the CallPolicy
interface the watcher asks), balance (balance-change notices), link (one Asterisk server's
connection), watcher (ties them together; `watch`/`run` start it). See docs/ami.md.
"""
