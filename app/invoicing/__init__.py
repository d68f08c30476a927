"""Invoices, credit notes, receipts, statements and taxes (issue 17; docs/invoicing.md)."""
