"""The worker process: takes items from its region's queue, runs a provider, stores the
image and reports progress.

This package holds the providers (providers/) and the storage backend (storage); the
consume loop that drives them sits on top of these.
"""
