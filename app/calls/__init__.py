"""Calls: the Asterisk servers that carry them (servers), the records they leave (models),
the live ones as the AMI watchers count them (in_use) and the after-commit notices that make
a watcher look at an account again (live). Docs: docs/ami.md."""
