"""The tenant-facing HTTP API: auth, rate limits, batches, live progress and webhooks."""
