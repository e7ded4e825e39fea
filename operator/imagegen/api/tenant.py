"""Tenant (cluster-scoped): who may submit batches, how fast, where, and on which worker pools."""

from typing import Annotated, Literal, Self

import pydantic

from imagegen.api import imagebatch, meta, podprofile

REPLICAS_ORDERED: meta.Rule = meta.Rule(
    rule="self.minReplicas <= self.maxReplicas",
    message="minReplicas must be <= maxReplicas",
    field_path=".minReplicas",
)
THRESHOLDS_ORDERED: meta.Rule = meta.Rule(
    rule="self.scaleDownThresholdPercent < self.targetCPUUtilizationPercentage"
    " && self.targetCPUUtilizationPercentage < self.scaleUpThresholdPercent",
    message="thresholds must satisfy scaleDownThresholdPercent"
    " < targetCPUUtilizationPercentage < scaleUpThresholdPercent",
    field_path=".targetCPUUtilizationPercentage",
)

# Worker objects are named worker-<tenant> and labelled with the name: both must fit 63.
MAX_NAME_LENGTH = 56
NAME_FITS: meta.Rule = meta.Rule(
    rule=f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
    message=f"metadata.name must be at most {MAX_NAME_LENGTH} characters"
    " (worker objects are named worker-<tenant>)",
)
PROFILE_NEEDS_DEDICATED: meta.Rule = meta.Rule(
    rule="!has(self.workers) || !has(self.workers.pool) || self.workers.pool != 'shared'"
    " || (!has(self.workers.profile) && !has(self.workers.pod))",
    message="workers.profile and workers.pod apply to a dedicated pool only"
    " (the region's shared pool has the operator's profile)",
    field_path=".workers.pool",
)
NAME_NOT_RESERVED: meta.Rule = meta.Rule(
    rule="self.metadata.name != 'shared'",
    message="metadata.name must not be 'shared': it names every region's shared pool",
)

READY = "Ready"
"""The Tenant's condition that says its pools are in place (or why not)."""
SPEC_REFUSALS = frozenset({"UnknownRegion", "NamespaceNotOwned", "NamespaceOwnedByAnotherTenant"})
"""Reasons of a False Ready condition that mean the operator refused the spec itself, so
nothing of the Tenant may be served (a region being down is not one: batches fail over)."""

Tier = Literal["priority", "standard"]
Pool = Literal["dedicated", "shared"]
Percent = Annotated[int, pydantic.Field(ge=1, le=100)]


class RateLimit(meta.Model):
    """Rate limit on the tenant's requests to the batch API (GCRA)."""

    requests_per_minute: Annotated[int, pydantic.Field(ge=1, le=100_000)] = 60
    """Sustained requests per minute."""
    burst: Annotated[int, pydantic.Field(ge=1, le=1_000_000)] = 120
    """Requests allowed at once above the sustained rate."""


class Quota(meta.Model):
    """Limits checked when a batch is admitted."""

    max_batch_size: Annotated[int, pydantic.Field(ge=1, le=100)] = 100
    """Most items in one batch."""
    max_active_batches: Annotated[int, pydantic.Field(ge=1, le=10_000)] = 10
    """Most batches admitted and not yet finished."""
    max_images_per_minute: Annotated[int, pydantic.Field(ge=1, le=10_000_000)] = 600
    """Most images generated per minute across all regions."""


class SLA(meta.Model):
    """Service level the tenant is promised."""

    # At most a week: the deadline is admission time plus this, and a date past year 9999
    # (any int64 the apiserver takes) could not be computed at all.
    batch_deadline_seconds: Annotated[int, pydantic.Field(ge=10, le=604_800)] = 300
    """Seconds from admission by which a batch must be complete."""


class Provider(meta.Model):
    """An image provider the tenant's workers may run."""

    name: meta.DnsLabel
    """Provider name, such as local."""


class Workers(meta.Model):
    """Worker pools in each allowed region and how they scale."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=meta.validations(REPLICAS_ORDERED, THRESHOLDS_ORDERED)
    )

    pool: Pool = "dedicated"
    """dedicated: its own Deployment and HPA per region; shared: the region's shared pool."""
    min_replicas: Annotated[int, pydantic.Field(ge=1, le=50)] = 3
    """Fewest worker replicas per region."""
    max_replicas: Annotated[int, pydantic.Field(ge=1, le=50)] = 50
    """Most worker replicas per region."""
    target_cpu_utilization_percentage: Percent = pydantic.Field(
        default=70, alias="targetCPUUtilizationPercentage"
    )
    """Average CPU utilization the HPA aims for."""
    scale_up_threshold_percent: Percent = 80
    """CPU utilization above which the pool scales up."""
    scale_down_threshold_percent: Percent = 30
    """CPU utilization below which the pool scales down."""
    scale_down_stabilization_seconds: Annotated[int, pydantic.Field(ge=0, le=3600)] | None = None
    """Window over which the HPA keeps the highest recommendation before scaling down;
    unset, the operator's `autoscaling.scaleDownStabilizationSeconds` applies."""
    providers: Annotated[
        list[Provider],
        pydantic.Field(
            min_length=1,
            max_length=16,
            json_schema_extra=meta.list_map("name"),
        ),
    ] = pydantic.Field(default_factory=lambda: [Provider(name="local")])
    """Providers the workers run; names are unique."""
    # Where the pods run and what they ask for (issue 19): see api/podprofile.py.
    profile: meta.DnsLabel | None = None
    """A named profile of the operator config (`profiles`), such as gpu-a100."""
    pod: podprofile.PodProfile | None = None
    """The pool's own profile, over the named one: resources, GPUs, nodes, priority."""

    @pydantic.model_validator(mode="after")
    def _check_order(self) -> Self:
        if not self.min_replicas <= self.max_replicas:
            raise ValueError(REPLICAS_ORDERED.message)
        if not (
            self.scale_down_threshold_percent
            < self.target_cpu_utilization_percentage
            < self.scale_up_threshold_percent
        ):
            raise ValueError(THRESHOLDS_ORDERED.message)
        return self

    @pydantic.field_validator("providers")
    @classmethod
    def _unique_providers(cls, providers: list[Provider]) -> list[Provider]:
        meta.require_unique([provider.name for provider in providers], what="provider names")
        return providers


DEFAULT_BATCH_TTL_SECONDS = 7 * 86_400
"""A finished batch and its images are kept a week unless the Tenant or batch says else."""


class Retention(meta.Model):
    """How long finished batches are kept."""

    batch_ttl_seconds: Annotated[int, pydantic.Field(ge=0, le=imagebatch.MAX_TTL_SECONDS)] = (
        pydantic.Field(default=DEFAULT_BATCH_TTL_SECONDS, alias="batchTTLSeconds")
    )
    """Default of each batch's spec.ttlSecondsAfterFinished: after it, the batch, its
    images and its queue data are deleted."""


class TenantSpec(meta.Model):
    """Desired state of a tenant."""

    model_config = pydantic.ConfigDict(json_schema_extra=meta.validations(PROFILE_NEEDS_DEDICATED))

    tier: Tier = "standard"
    """priority tenants are served before standard ones."""
    namespace: meta.DnsLabel
    """Namespace where the tenant's ImageBatches live; created if missing."""
    rate_limit: RateLimit = pydantic.Field(default_factory=RateLimit)
    """Rate limit on requests to the batch API."""
    quota: Quota = pydantic.Field(default_factory=Quota)
    """Limits checked when a batch is admitted."""
    sla: SLA = pydantic.Field(default_factory=SLA)
    """Service level the tenant is promised."""
    regions: Annotated[
        list[meta.DnsLabel],
        pydantic.Field(
            min_length=1, max_length=10, json_schema_extra={"x-kubernetes-list-type": "set"}
        ),
    ]
    """Regions the tenant's batches may run in, in order of preference."""
    workers: Workers = pydantic.Field(default_factory=Workers)
    """Worker pools in each allowed region and how they scale."""
    retention: Retention = pydantic.Field(default_factory=Retention)
    """How long finished batches and their images are kept."""

    @pydantic.model_validator(mode="after")
    def _check_profile(self) -> Self:
        shared = self.workers.pool == "shared"
        if shared and (self.workers.profile is not None or self.workers.pod is not None):
            raise ValueError(PROFILE_NEEDS_DEDICATED.message)
        return self

    @pydantic.field_validator("regions")
    @classmethod
    def _unique_regions(cls, regions: list[str]) -> list[str]:
        meta.require_unique(regions, what="regions")
        return regions


class HPACondition(meta.StatusModel):
    """A condition of a region's HorizontalPodAutoscaler, as the HPA reports it."""

    type: str
    """Type of the HPA condition, such as AbleToScale."""
    status: meta.ConditionStatus
    """Status of the condition: True, False or Unknown."""
    reason: str | None = None
    """Reason the HPA gives."""
    message: str | None = None
    """Message the HPA gives."""
    last_transition_time: meta.Timestamp | None = None
    """When the status last changed."""


class PoolCapacity(meta.StatusModel):
    """Whether the region could place the pool's workers, as its scheduler says (issue 19)."""

    pending: int = 0
    """Workers of the pool not yet running (Pending)."""
    unschedulable: int = 0
    """Of those, the ones the scheduler could not place anywhere."""
    reason: str | None = None
    """The scheduler's reason, such as Unschedulable; absent when every worker was placed."""
    message: str | None = None
    """The scheduler's message, such as `0/5 nodes are available: 5 Insufficient
    nvidia.com/gpu.`"""


class RegionStatus(meta.StatusModel):
    """State of the tenant's worker pool in one region."""

    name: meta.DnsLabel
    """Region name."""
    ready_replicas: int | None = None
    """Ready replicas of the worker Deployment."""
    desired_replicas: int | None = None
    """Replicas the worker Deployment asks for."""
    hpa_current_replicas: int | None = None
    """Current replicas as the HPA sees them."""
    hpa_desired_replicas: int | None = None
    """Replicas the HPA last decided on."""
    conditions: Annotated[
        list[HPACondition] | None, pydantic.Field(json_schema_extra=meta.list_map("type"))
    ] = None
    """Conditions copied from the HPA."""
    last_error: str | None = None
    """Last error met while reconciling this region; absent when the last attempt worked."""
    capacity: PoolCapacity | None = None
    """Pending and unschedulable workers of the pool in this region."""


class TenantStatus(meta.StatusModel):
    """Observed state of a tenant, written by the operator."""

    observed_generation: int | None = None
    """metadata.generation that this status describes."""
    conditions: meta.Conditions | None = None
    """Ready and Degraded."""
    regions: Annotated[
        list[RegionStatus] | None, pydantic.Field(json_schema_extra=meta.list_map("name"))
    ] = None
    """Worker pool state per region."""


class Tenant(meta.Resource):
    """A tenant of imagegen: limits, SLA, regions and worker scaling for its image batches."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=meta.validations(NAME_FITS, NAME_NOT_RESERVED)
    )

    info = meta.ResourceInfo(
        kind="Tenant",
        plural="tenants",
        singular="tenant",
        scope="Cluster",
        short_names=("tn",),
        printer_columns=(
            meta.PrinterColumn(name="Tier", json_path=".spec.tier"),
            meta.PrinterColumn(name="Regions", json_path=".spec.regions"),
            meta.PrinterColumn(
                name="Ready", json_path='.status.conditions[?(@.type=="Ready")].status'
            ),
        ),
    )

    api_version: meta.ApiVersion = meta.API_VERSION
    kind: Literal["Tenant"] = "Tenant"
    metadata: meta.ObjectMeta
    spec: TenantSpec
    status: TenantStatus | None = None

    @pydantic.model_validator(mode="after")
    def _check_name(self) -> Self:
        name = self.metadata.name or ""
        if len(name) > MAX_NAME_LENGTH:
            raise ValueError(NAME_FITS.message)
        if name == "shared":
            raise ValueError(NAME_NOT_RESERVED.message)
        return self
