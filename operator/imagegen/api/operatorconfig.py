"""The operator's configuration file: regions, worker pods, the shared pool, intervals.

A YAML file (a Helm-rendered ConfigMap in a cluster), read once at start:

    regions:
      - name: us-east
        kubeconfig: /etc/imagegen/regions/us-east/kubeconfig
        redis: {url: "redis://redis.us-east:6379/0"}
        storage: {url: "s3://imagegen-us-east/images", credentialsSecret: imagegen-store}
        weight: 2
"""

from __future__ import annotations

import pathlib
from typing import Annotated, Literal, Self

import pydantic
import yaml

from imagegen.api import meta, objectstore, podprofile, redisconfig, tenant

Quantity = podprofile.Quantity


class SecretKeyRef(meta.Model):
    """A key of a Secret, read where the consumer runs."""

    name: meta.DnsLabel
    """Secret name."""
    key: str
    """Key within the Secret."""
    namespace: meta.DnsLabel | None = None
    """Namespace of the Secret; the operator's own namespace when omitted. The chart lets
    the operator read Secrets only there: another namespace needs a Role of your own."""


class CaBundleRef(meta.Model):
    """A PEM CA bundle, one key of a Secret or of a ConfigMap (set exactly one of them),
    read where the consumer runs."""

    # The same rule for Helm's values schema, which is generated from this model.
    model_config = pydantic.ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["secret"]}, {"required": ["configMap"]}]}
    )

    secret: meta.DnsLabel | None = None
    """Name of a Secret holding the bundle (cert-manager writes `ca.crt` into its
    certificate Secrets)."""
    config_map: meta.DnsLabel | None = None
    """Name of a ConfigMap holding the bundle (trust-manager's Bundles, or your own)."""
    key: Annotated[str, pydantic.Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = "ca.crt"
    """Key of the bundle within the Secret or ConfigMap."""
    namespace: meta.DnsLabel | None = None
    """Namespace of the operator's copy; the operator's own namespace when omitted."""

    @pydantic.model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.secret is None) == (self.config_map is None):
            raise ValueError("set exactly one of secret, configMap")
        return self


class RegionRedis(redisconfig.RedisSettings):
    """How the operator and the workers of a region reach its Redis (one node or a cluster).

    The workers get every setting from their Deployment. The password and the CA bundle
    are read in two places, so the same Secret (and ConfigMap) must exist in both: the
    management cluster's operator namespace, where the operator reads it through the
    apiserver, and the region's workers namespace, where the worker pods take it.
    """

    password_secret: SecretKeyRef | None = None
    """Secret holding the Redis password (its `namespace`, if set, is the operator's copy)."""
    ca: CaBundleRef | None = None
    """CA bundle that signed the Redis's certificates, for a rediss:// URL with a private
    CA; the system's trust store when omitted."""

    @pydantic.model_validator(mode="after")
    def _ca_only_with_tls(self) -> Self:
        if self.ca is not None and not self.address.tls:
            raise ValueError("ca: set for a plain URL; a CA needs rediss:// (TLS)")
        return self


class Region(meta.Model):
    """One regional cluster and how to reach it; exactly one way of reaching it is set."""

    name: meta.DnsLabel
    """Region name, as Tenants list it."""
    kubeconfig: pathlib.Path | None = None
    """Path of a kubeconfig file for the regional cluster."""
    kubeconfig_secret: SecretKeyRef | None = None
    """A Secret in the management cluster holding the regional kubeconfig."""
    in_cluster: bool = False
    """The region is the cluster the operator runs in (its service account)."""
    redis: RegionRedis
    """The region's Redis."""
    storage: objectstore.ObjectStore = pydantic.Field(default_factory=objectstore.ObjectStore)
    """The region's object store, where its workers put images, the gateway reads them
    and the operator deletes them after the batch's TTL. The default, each worker pod's
    own volume, loses images with the pod: set an S3 store in production."""
    weight: Annotated[int, pydantic.Field(ge=1, le=100)] = 1
    """Relative capacity: dispatch passes over a region once its queue holds 1000 items per
    unit of weight, and, when every region is that busy, picks the fewest per unit."""

    @pydantic.model_validator(mode="after")
    def _one_way_in(self) -> Self:
        ways = [self.kubeconfig is not None, self.kubeconfig_secret is not None, self.in_cluster]
        if sum(ways) != 1:
            raise ValueError("set exactly one of kubeconfig, kubeconfigSecret, inCluster")
        return self


class WorkerPods(meta.Model):
    """What every worker pod of every pool looks like."""

    namespace: meta.DnsLabel = "imagegen-workers"
    """Namespace of the worker pools in each regional cluster."""
    image: str = "ghcr.io/semantest/imagegen:0.1.0"
    """Container image with the imagegen command."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """Kubernetes imagePullPolicy."""
    cpu_request: Quantity = "500m"
    """CPU request; the HPA's utilization is measured against it."""
    cpu_limit: Quantity = "1"
    """CPU limit."""
    memory_request: Quantity = "256Mi"
    """Memory request."""
    memory_limit: Quantity = "512Mi"
    """Memory limit."""
    concurrency: Annotated[int, pydantic.Field(ge=1, le=64)] = 4
    """Items one worker generates at once."""
    port: Annotated[int, pydantic.Field(ge=1024, le=65535)] = 8080
    """Port of the worker's health and metrics endpoints."""
    termination_grace_seconds: Annotated[int, pydantic.Field(ge=1, le=3600)] = 60
    """Time a stopping worker has to finish or hand back its items."""
    profile: podprofile.PodProfile | None = None
    """The profile every pool starts from, over the requests and limits above (such as
    priorityClassName: imagegen-standard); named and Tenant profiles go over it."""


class Autoscaling(meta.Model):
    """HPA behaviour that is not per tenant: how fast pools may move."""

    scale_down_stabilization_seconds: Annotated[int, pydantic.Field(ge=0, le=3600)] = 300
    """The HPA scales down to the highest recommendation of this window, so a dip in
    load does not remove workers that the next batch needs."""
    scale_down_percent_per_minute: Annotated[int, pydantic.Field(ge=1, le=100)] = 20
    """At most this share of the replicas go per minute."""
    scale_up_pods_per_15_seconds: Annotated[int, pydantic.Field(ge=1, le=50)] = 8
    """At most this many pods come per 15 s (or doubling, whichever is more)."""


class OperatorConfig(meta.Model):
    """The operator's configuration file."""

    regions: Annotated[list[Region], pydantic.Field(min_length=1, max_length=20)]
    """The regional clusters."""
    workers: WorkerPods = pydantic.Field(default_factory=WorkerPods)
    """Worker pod template shared by all pools."""
    shared_pool: tenant.Workers = pydantic.Field(
        default_factory=lambda: tenant.Workers(pool="shared")
    )
    """Size and scaling of the shared pool each region runs for `pool: shared` tenants."""
    autoscaling: Autoscaling = pydantic.Field(default_factory=Autoscaling)
    """HPA behaviour common to all pools."""
    profiles: (
        Annotated[dict[meta.DnsLabel, podprofile.PodProfile], pydantic.Field(max_length=64)] | None
    ) = None
    """Named worker pod profiles that Tenants pick with `workers.profile` (gpu-a100,
    premium-dedicated): the platform team's node pools, GPUs and priorities."""
    operator_namespace: meta.DnsLabel = "imagegen-system"
    """Namespace of the operator in the management cluster (kubeconfig Secrets, key index)."""
    drift_check_seconds: Annotated[int, pydantic.Field(ge=1, le=3600)] = 60
    """How often each Tenant's objects are compared with what they should be."""
    failover_after_seconds: Annotated[int, pydantic.Field(ge=1, le=3600)] = 60
    """A batch's region unreachable this long: its unfinished items go to another region."""
    retention_check_seconds: Annotated[int, pydantic.Field(ge=1, le=3600)] = 60
    """How often finished batches are checked against their TTL: a batch outlives its
    ttlSecondsAfterFinished by at most this."""
    cleanup_sweep_seconds: Annotated[int, pydantic.Field(ge=1, le=3600)] = 30
    """How often a deleted batch's images and queue keys in a region that did not answer
    at deletion are tried again."""
    api_key_grace_seconds: Annotated[int, pydantic.Field(ge=0)] = 86_400
    """How long a rotated API key stays valid next to its successor."""
    region_request_timeout_seconds: Annotated[float, pydantic.Field(gt=0, le=120)] = 10.0
    """Bound on one request of the operator to a regional apiserver, and on one command to
    a region's Redis whose `redis` sets no commandTimeoutSeconds of its own."""
    region_connect_timeout_seconds: Annotated[float, pydantic.Field(gt=0, le=60)] = 3.0
    """Bound on the operator connecting to a regional apiserver, and to a region's Redis
    whose `redis` sets no connectTimeoutSeconds; short, so a dead region is seen fast."""

    @pydantic.field_validator("regions")
    @classmethod
    def _unique_names(cls, regions: list[Region]) -> list[Region]:
        meta.require_unique([region.name for region in regions], what="region names")
        return regions

    @pydantic.model_validator(mode="after")
    def _shared_profile_known(self) -> Self:
        name = self.shared_pool.profile
        if name is not None and name not in (self.profiles or {}):
            raise ValueError(f"sharedPool.profile: unknown profile {name!r}")
        return self

    def region(self, name: str) -> Region | None:
        """The region of that name, or None when the registry does not know it."""
        return next((region for region in self.regions if region.name == name), None)

    def operator_redis(self, region: Region) -> redisconfig.RedisSettings:
        """The region's Redis as the operator reaches it: the timeouts its `redis` sets,
        else the operator's region timeouts, which bound every call to that region.

        The workers keep the model's defaults instead: they run next to their Redis,
        while the operator may be a continent away.
        """
        given = region.redis.model_fields_set
        inherited = {
            field: value
            for field, value in (
                ("connect_timeout_seconds", self.region_connect_timeout_seconds),
                ("command_timeout_seconds", self.region_request_timeout_seconds),
            )
            if field not in given
        }
        shared = region.redis.model_dump(
            by_alias=False, include=set(redisconfig.RedisSettings.model_fields)
        )
        return redisconfig.RedisSettings.model_validate(shared | inherited)


def load(path: pathlib.Path) -> OperatorConfig:
    """Read and validate a configuration file; pydantic's error names the bad field."""
    document = yaml.safe_load(path.read_text()) or {}
    config = OperatorConfig.model_validate(document)
    # Relative kubeconfig paths are relative to the file, as kubectl treats them.
    for region in config.regions:
        if region.kubeconfig is not None and not region.kubeconfig.is_absolute():
            region.kubeconfig = path.parent / region.kubeconfig
    return config


LOCAL_REGIONS: tuple[str, ...] = ("us-east", "eu-west", "asia-pacific")
"""The regions of the local stack, as the examples' Tenants list them."""


def local_default() -> OperatorConfig:
    """The configuration of the local stack: its three regions, one local Redis for all.

    Each kubeconfig is the placeholder path `<region>/kubeconfig`, relative to where the
    local stack keeps its clusters; `imagegen render`, which uses this config, never reads it.
    """
    return OperatorConfig(
        regions=[
            Region(
                name=name,
                kubeconfig=pathlib.Path(name, "kubeconfig"),
                redis=RegionRedis(url="redis://127.0.0.1:6379/0"),
            )
            for name in LOCAL_REGIONS
        ]
    )
