"""The tenant-facing batch API: FastAPI app, API-key auth, GCRA rate limits, validation,
idempotency, and live status over WebSocket and SSE. It meets the operator only through
the ImageBatch and Tenant CRs (and the API-key index the operator publishes)."""
