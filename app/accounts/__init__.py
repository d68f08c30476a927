"""Accounts: the customer Account (models), its number and PIN (numbering), the reseller's
list query with bulk status changes (listing) and the operations portals and workers share
(operations). Docs: docs/accounts.md."""
