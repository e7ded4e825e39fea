"""Manifests from API objects: pure functions of a Tenant, a region and the operator config.

Modules, imported as modules (`from imagegen.render import pool`, then `pool.tenant_pool`):

- `labels`: every label key and value the operator puts on what it creates, in one place.
- `quantity`: Kubernetes quantities in the canonical form the apiserver writes back.
- `pool`: the worker pool objects of a region (Namespace, ServiceAccount, Deployment,
  HorizontalPodAutoscaler, PodDisruptionBudget), for one Tenant or the shared pool.
- `output`: the YAML stream `imagegen render` prints.

Nothing here does I/O, reads a clock or draws a random number: the same input renders the
same manifests, which is what lets the operator compare them with live objects. Every value
is rendered as the apiserver returns it (canonical quantities, integers as integers, no
None, no empty lists), so an unchanged object compares equal to what it reads back.
"""
