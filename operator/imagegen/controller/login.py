"""How the operator logs in to the management cluster: a kubeconfig file or in-cluster."""

from __future__ import annotations

import pathlib

import kopf
import lightkube


def connection_from_kubeconfig(*, path: pathlib.Path) -> kopf.ConnectionInfo:
    """Kopf connection info from the current context of a kubeconfig file.

    lightkube parses the file, so the operator reads kubeconfigs the same way as the
    regional-cluster clients do (relative paths resolved against the file's folder).
    """
    config = lightkube.KubeConfig.from_file(path).get()
    if config is None:
        raise kopf.LoginError(f"{path}: no current context")
    cluster, user = config.cluster, config.user

    def resolve(name: str | None) -> str | None:
        return str(config.abs_file(name)) if name else None

    token = user.token if user else None
    if user and user.token_file:
        token = pathlib.Path(config.abs_file(user.token_file)).read_text().strip()
    return kopf.ConnectionInfo(
        server=cluster.server,
        ca_path=resolve(cluster.certificate_auth),
        ca_data=cluster.certificate_auth_data,
        insecure=cluster.insecure or None,
        token=token,
        certificate_path=resolve(user.client_cert if user else None),
        certificate_data=user.client_cert_data if user else None,
        private_key_path=resolve(user.client_key if user else None),
        private_key_data=user.client_key_data if user else None,
        username=user.username if user else None,
        password=user.password if user else None,
        default_namespace=config.namespace,
    )
