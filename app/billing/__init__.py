"""Service plans, per-user pricing, bundles, recurring charges, invoices."""
