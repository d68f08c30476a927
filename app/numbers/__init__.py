"""Numbers (DIDs): the platform's inventory, allocation to resellers, assignment to accounts
and extensions with their charges, and the outbound caller id they give. The switch reads
only the realtime rows that provisioning/ writes from them. Docs: docs/numbers.md."""
