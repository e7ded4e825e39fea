"""The operator: Kopf handlers for Tenant and ImageBatch, its settings and its entry point."""
