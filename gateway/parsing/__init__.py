"""Reading what the caller sent: chat and embeddings bodies, token estimates, JSON."""
