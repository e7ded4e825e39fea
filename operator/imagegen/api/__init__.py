"""The imagegen API: pydantic models of the custom resources, the source of the CRDs.

Modules, imported as modules (`from imagegen.api import tenant`, then `tenant.Tenant`):

- `meta`: group and version, model bases, ObjectMeta, Condition, CEL rule plumbing.
- `tenant`: the cluster-scoped Tenant.
- `imagebatch`: the namespaced ImageBatch.
- `crd`: CustomResourceDefinitions generated from the models.
- `operatorconfig`: the operator's configuration file (regions, worker pods, shared pool).

Nothing here imports Kopf, Kubernetes clients or servers, nor any other part of imagegen.
"""
