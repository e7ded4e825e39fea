"""Signed webhooks: batch events into a durable Redis outbox, delivered with retries by a
dispatcher that survives restarts, behind an SSRF guard (docs/webhooks.md)."""
