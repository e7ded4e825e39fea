"""Object stores for images: one interface (`base.Store`), a folder (`files`) and any
S3-compatible service (`s3`); `stores.open_store` builds the one a region's config names.

Knows nothing of Kubernetes, Redis or HTTP servers: the worker, the gateway and the
operator's cleanup each hand it the region's `api.objectstore.ObjectStore` and credentials.
"""
