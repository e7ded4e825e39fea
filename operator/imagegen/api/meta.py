"""What every imagegen kind shares: group and version, model bases, metadata, conditions."""

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Annotated, ClassVar, Final, Literal

import pydantic
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP: Final = "imagegen.semantest.io"
VERSION: Final = "v1alpha1"
ApiVersion = Literal["imagegen.semantest.io/v1alpha1"]
API_VERSION: Final[ApiVersion] = "imagegen.semantest.io/v1alpha1"

CORRELATION_ANNOTATION: Final = f"{GROUP}/correlation-id"
"""Annotation of an ImageBatch with the id that its logs carry from the gateway's request
to the worker; the gateway sets it, and without it the operator uses the batch uid."""

FIELD_MANAGER: Final = "imagegen-operator"
"""The server-side-apply field manager of everything the operator writes."""

WEBHOOK_SECRETS: Final = "imagegen-webhook-secrets"
"""Secret in the operator's namespace, tenant name -> the tenant's `whsec_` webhook signing
secret: the one Secret the gateway may read (the operator writes it)."""
TENANT_SECRETS_ROLE: Final = "imagegen-operator-tenant-secrets"
"""ClusterRole with the operator's Secret rights (get, create, patch, delete; no list or
watch), never bound cluster-wide: the operator binds it, under this same name, in each
tenant namespace it adopts, and only there."""
WEBHOOK_SECRET_KEY: Final = "webhook-secret"  # noqa: S105 - a key name, not a secret
"""Key of the signing secret in each tenant's own API key Secret, for the tenant to read."""

DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DnsLabel = Annotated[str, pydantic.Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
"""A DNS-1123 label: usable as a namespace, a label value and a Kubernetes object name."""


def _rfc3339(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Whole seconds in UTC with a "Z", as metav1.Time writes them, so that what we write
# reads back unchanged and compares equal to what the apiserver returns.
Timestamp = Annotated[
    pydantic.AwareDatetime,
    pydantic.PlainSerializer(_rfc3339, return_type=str, when_used="json"),
]


class Model(pydantic.BaseModel):
    """Base of every CR model: camelCase on the wire, snake_case in Python, no unknown keys."""

    model_config = pydantic.ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )


class StatusModel(Model):
    """Base of every status model: unknown keys are dropped, not refused."""

    # Status is written by the operator alone; an older operator running against a CRD
    # that a newer one installed must still read the status the newer one wrote.
    model_config = pydantic.ConfigDict(extra="ignore")


class ObjectMeta(Model):
    """The part of Kubernetes ObjectMeta that imagegen reads; the rest passes through."""

    # The apiserver adds managedFields, ownerReferences and more; keep them for the round trip.
    model_config = pydantic.ConfigDict(extra="allow")

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: Timestamp | None = None
    deletion_timestamp: Timestamp | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """One aspect of the object's state, in the shape of Kubernetes metav1.Condition."""

    type: Annotated[
        str,
        pydantic.Field(
            max_length=316,
            pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
            r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        ),
    ]
    """Type of the condition in CamelCase, such as Ready."""
    status: ConditionStatus
    """Status of the condition: True, False or Unknown."""
    reason: Annotated[
        str,
        pydantic.Field(
            min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
        ),
    ]
    """Programmatic identifier in CamelCase for the last transition."""
    message: Annotated[str, pydantic.Field(max_length=32768)] = ""
    """Human-readable details of the last transition."""
    last_transition_time: Timestamp
    """When the status last changed."""
    observed_generation: Annotated[int, pydantic.Field(ge=0)] | None = None
    """metadata.generation that the condition was computed from."""


def list_map(*keys: str) -> JsonDict:
    """JSON schema extra that makes a list a map keyed by `keys`, as the apiserver merges it."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


Conditions = Annotated[list[Condition], pydantic.Field(json_schema_extra=list_map("type"))]


def require_unique(values: Sequence[str], *, what: str) -> None:
    """Raise ValueError naming the repeated values, as a pydantic validator reports them."""
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise ValueError(f"{what} must be unique, repeated: {', '.join(repeated)}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rule:
    """A CEL rule that the apiserver checks; pydantic raises the same message for the same case."""

    rule: str
    message: str
    field_path: str | None = None


def validations(*rules: Rule) -> JsonDict:
    """JSON schema extra that puts the rules into the CRD as x-kubernetes-validations."""
    entries: list[pydantic.JsonValue] = []
    for rule in rules:
        entry: JsonDict = {"rule": rule.rule, "message": rule.message}
        if rule.field_path is not None:
            entry["fieldPath"] = rule.field_path
        entries.append(entry)
    return {"x-kubernetes-validations": entries}


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrinterColumn:
    """A column of `kubectl get`."""

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    priority: int = 0
    """0 shows in `kubectl get`; higher only in `kubectl get -o wide`."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResourceInfo:
    """How a kind is named and shown in Kubernetes, beyond its fields."""

    kind: str
    plural: str
    singular: str
    scope: Literal["Cluster", "Namespaced"]
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...]
    categories: tuple[str, ...] = ("imagegen",)


class Resource(Model):
    """Base of a kind's model: the fields are the CR, `info` the rest of its CRD."""

    info: ClassVar[ResourceInfo]
