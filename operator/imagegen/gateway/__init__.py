"""The tenant-facing batch API: FastAPI app, API-key auth, GCRA rate limits, validation,
idempotency, live status over WebSocket and SSE, and signed webhooks (webhooks/). It
meets the operator only through the ImageBatch and Tenant CRs (and the API-key index and
webhook secrets the operator publishes)."""
