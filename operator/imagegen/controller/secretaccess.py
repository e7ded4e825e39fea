"""The operator's access to Secrets in a tenant's namespace, and in no other.

The operator's own roles grant no Secret outside its namespace. When it adopts a tenant
namespace (made by it, or labelled by the platform team to hand it over), it binds itself
there to the ClusterRole `meta.TENANT_SECRETS_ROLE` with a RoleBinding of the same name,
and removes that binding when the Tenant goes. Its RBAC lets it bind that one role and no
other, and the chart's ValidatingAdmissionPolicy lets it do so only for itself and only in
namespaces labelled as a tenant's, so Secrets elsewhere (kube-system, other teams) stay
out of its reach even through a binding of its own making.
"""

from __future__ import annotations

import asyncio
import time

import lightkube
from lightkube.models import authorization_v1 as authorization_models
from lightkube.models import meta_v1, rbac_v1
from lightkube.resources import authentication_v1, authorization_v1, rbac_authorization_v1

from imagegen.api import meta
from imagegen.kube import objects
from imagegen.render import labels

_SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
_POLL_SECONDS = 0.05


class BindingNotHonouredError(RuntimeError):
    """The RoleBinding exists but the apiserver's authorizer has not honoured it in time."""


async def identity(client: lightkube.AsyncClient) -> rbac_v1.Subject:
    """Who the operator's client is, as an RBAC subject: its ServiceAccount in a cluster, or
    the user of a developer's kubeconfig."""
    review = await client.create(authentication_v1.SelfSubjectReview())
    user = review.status.userInfo if review.status else None
    return subject_for((user.username if user else None) or "")


def subject_for(username: str) -> rbac_v1.Subject:
    """The RBAC subject that names this authenticated user: a ServiceAccount by its
    namespace and name, anyone else as a User."""
    if username.startswith(_SERVICE_ACCOUNT_PREFIX):
        namespace, _, name = username.removeprefix(_SERVICE_ACCOUNT_PREFIX).partition(":")
        return rbac_v1.Subject(kind="ServiceAccount", name=name, namespace=namespace)
    return rbac_v1.Subject(kind="User", name=username, apiGroup="rbac.authorization.k8s.io")


async def grant(
    *,
    client: lightkube.AsyncClient,
    namespace: str,
    subject: rbac_v1.Subject,
    tenant_name: str,
    timeout_seconds: float = 10.0,
) -> bool:
    """Make sure `subject` may write Secrets in the tenant's namespace; True when it had to
    bind itself there. The caller has checked that the namespace is the tenant's."""
    if await _may_write_secrets(client, namespace):
        return False
    try:
        await client.create(_binding(namespace=namespace, subject=subject, tenant_name=tenant_name))
    except lightkube.ApiError as error:
        # 409: bound before, and the authorizer has not caught up yet.
        if error.status.code != 409:
            raise
    # The authorizer reads bindings from its own cache: wait until it honours this one, so
    # the Secret writes that follow are never refused.
    deadline = time.monotonic() + timeout_seconds
    while not await _may_write_secrets(client, namespace):
        if time.monotonic() > deadline:
            raise BindingNotHonouredError(
                f"RoleBinding {meta.TENANT_SECRETS_ROLE} in namespace {namespace} was not"
                f" honoured by the apiserver within {timeout_seconds:.0f}s"
            )
        await asyncio.sleep(_POLL_SECONDS)
    return True


async def revoke(*, client: lightkube.AsyncClient, namespace: str) -> None:
    """Remove the operator's binding from a namespace that is no longer a tenant's."""
    await objects.delete_if_present(
        client, rbac_authorization_v1.RoleBinding, meta.TENANT_SECRETS_ROLE, namespace=namespace
    )


async def _may_write_secrets(client: lightkube.AsyncClient, namespace: str) -> bool:
    review = await client.create(
        authorization_v1.SelfSubjectAccessReview(
            spec=authorization_models.SelfSubjectAccessReviewSpec(
                resourceAttributes=authorization_models.ResourceAttributes(
                    namespace=namespace, verb="patch", resource="secrets"
                )
            )
        )
    )
    return bool(review.status and review.status.allowed)


def _binding(
    *, namespace: str, subject: rbac_v1.Subject, tenant_name: str
) -> rbac_authorization_v1.RoleBinding:
    return rbac_authorization_v1.RoleBinding(
        metadata=meta_v1.ObjectMeta(
            name=meta.TENANT_SECRETS_ROLE,
            namespace=namespace,
            labels={**labels.managed(), labels.TENANT: tenant_name},
        ),
        roleRef=rbac_v1.RoleRef(
            apiGroup="rbac.authorization.k8s.io", kind="ClusterRole", name=meta.TENANT_SECRETS_ROLE
        ),
        subjects=[subject],
    )
