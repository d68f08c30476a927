"""Resellers: creating and changing tenants in the reseller tree (operations). The Tenant
model and the scoping mechanism stay in tenants/, which every layer may import."""
