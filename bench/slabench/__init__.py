"""The parts of bench/sla.py: the stack it runs on, the tenants and their traffic through
the gateway, the worker processes that follow the pods, one scenario from start to
teardown, and the figures drawn from what was recorded."""
