"""SIMULATION: the load model of the test and local stacks, nothing more.

The test control planes run worker pods on kwok's simulated nodes, where a pod's CPU is
whatever its `kwok.x-k8s.io/usage-cpu` annotation says. This package turns what the real
workers of a region are doing (items queued and in flight, read from Redis) into those
annotations, so that the real metrics-server and the real HPA controller see the load.
Only `imagegen.cli`'s local-stack commands, tests and benchmarks import it; the operator,
the gateway and the workers never do (an import-linter contract says so).
"""
