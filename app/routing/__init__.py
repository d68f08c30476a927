"""Call control: which calls an account may place and where they go (docs/routing.md)."""
