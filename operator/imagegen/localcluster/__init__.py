"""The local stack: real control planes and redis-server built and started on loopback.

Used by the test fixtures and by `imagegen dev`; never by the operator, gateway or
workers. Modules: build (Go binaries, cached), pki, process, cluster, redis, stack.
"""
