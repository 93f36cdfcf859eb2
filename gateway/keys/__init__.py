"""Callers' API keys: minting and resolving them, the shared key cache, last use."""
