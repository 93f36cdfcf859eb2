"""Which upstream serves a request: the catalog, its loader, availability, rate limits,
and failover with cooldowns."""
