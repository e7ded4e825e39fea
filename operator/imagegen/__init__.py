"""imagegen: a Kubernetes operator for multi-tenant batch image generation across regions."""
