"""values.schema.json of the Helm chart, generated so that Helm refuses what the operator,
the CRDs and the apiserver would refuse, with the same bounds, before anything is applied.

The parts that the operator reads (`regions`, `config`) come from the OperatorConfig model
and the `tenants` from the Tenant CRD schema; only the chart's own knobs (images, the
gateway, the bundled Redis, NetworkPolicies, monitoring, Argo CD) are written here.
"""

import copy
import json
from collections.abc import Mapping
from typing import Any, Final

from imagegen.api import crd, meta, operatorconfig, redisconfig, tenant

# The chart sets these config fields itself: the release namespace, and regions from
# their own value.
_CHART_OWNED_CONFIG: Final = ("regions", "operatorNamespace")


def _obj(properties: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """An object schema that refuses keys it does not name, so typos fail loudly."""
    closed = {"type": "object", "properties": dict(properties), "additionalProperties": False}
    return closed | extra


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description} | extra


_DNS_NAME_OR_EMPTY: Final = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$"
_PORT: Final = {"type": "integer", "minimum": 1, "maximum": 65535}
_PORTS: Final = {"type": "array", "items": _PORT, "minItems": 1}
_CIDRS: Final = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
# Kubernetes fields the chart passes through as given; the apiserver checks them.
_PASSTHROUGH_OBJECT: Final = {"type": "object"}
_PASSTHROUGH_LIST: Final = {"type": "array"}
_SECRET_REF: Final = {
    "description": "A key of a Secret in the release namespace: {name, key}, or {} for none.",
    "anyOf": [
        {"type": "object", "maxProperties": 0},
        _obj(
            {
                "name": _string("Secret name.", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
                "key": _string("Key within the Secret.", minLength=1),
            },
            required=["name", "key"],
        ),
    ],
}
_RESOURCES: Final = _obj(
    {"requests": _PASSTHROUGH_OBJECT, "limits": _PASSTHROUGH_OBJECT},
    description="Container resources, as a Pod spec writes them.",
)


_CA_REF: Final = {
    "description": "A CA bundle (PEM) in the release namespace: {secret: name, key} or"
    " {configMap: name, key} (key defaults to ca.crt), or {} for the system's trust store.",
    "anyOf": [
        {"type": "object", "maxProperties": 0},
        *(
            _obj(
                {
                    source: _string(f"{kind} name.", pattern=meta.DNS_LABEL_PATTERN),
                    "key": _string(f"Key within the {kind}.", pattern=r"^[-._a-zA-Z0-9]+$"),
                },
                required=[source],
            )
            for source, kind in (("secret", "Secret"), ("configMap", "ConfigMap"))
        ),
    ],
}


def _gateway_redis() -> dict[str, Any]:
    """The management Redis: the URL (or a Secret holding it), the password and CA from
    the release namespace, and the timeouts and retries of the settings model."""
    settings = redisconfig.RedisSettings.model_json_schema(by_alias=True)["properties"]
    # Without the model's defaults: the gateway has its own (gateway/settings.py GatewayRedis).
    shared = {
        name: {key: value for key, value in _without_titles(field).items() if key != "default"}
        for name, field in settings.items()
        if name != "url"
    }
    return _obj(
        {
            "url": _string(
                "The management Redis (a URL as redisconfig.RedisSettings takes it); empty"
                " for the bundled one.",
                pattern=f"^$|{redisconfig.URL_PATTERN}",
            ),
            "urlSecret": _SECRET_REF,
            "passwordSecret": _SECRET_REF,
            "ca": _CA_REF,
            **shared,
        }
    )


def _scheduling() -> dict[str, Any]:
    return {
        "podAnnotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
        "tolerations": _PASSTHROUGH_LIST,
        "affinity": _PASSTHROUGH_OBJECT,
    }


def _chart_properties() -> dict[str, Any]:
    return {
        "mode": {
            "description": "management: operator, gateway, RBAC and CRDs; region: what a"
            " regional cluster needs (workers namespace, the operator's regional RBAC).",
            "enum": ["management", "region"],
        },
        "createNamespace": {
            "type": "boolean",
            "description": "Render the release namespace, labelled for restricted Pod Security.",
        },
        "image": _obj(
            {
                "repository": _string("Image of the imagegen command.", minLength=1),
                "tag": _string("Image tag; empty for the chart's appVersion."),
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            },
            required=["repository"],
        ),
        "imagePullSecrets": _PASSTHROUGH_LIST,
        "logFormat": {
            "enum": ["text", "json"],
            "description": "Log lines of the operator and the gateway (imagegen --log-format).",
        },
        "operator": _obj(
            {
                "port": _PORT | {"minimum": 1024},
                "metricsPort": _PORT | {"minimum": 1024},
                "resources": _RESOURCES,
                "podDisruptionBudget": _obj({"enabled": {"type": "boolean"}}),
                **_scheduling(),
            }
        ),
        "gateway": _obj(
            {
                "enabled": {"type": "boolean"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 100},
                "port": _PORT | {"minimum": 1024},
                "settings": {
                    "type": "object",
                    "description": "More of the gateway's settings file (gateway/settings.py),"
                    " which the gateway validates at start.",
                },
                "extraArgs": {"type": "array", "items": {"type": "string"}},
                "service": _obj(
                    {
                        "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                        "port": _PORT,
                        "annotations": _PASSTHROUGH_OBJECT,
                        "loadBalancerSourceRanges": {
                            "type": "array",
                            "items": _string("A CIDR allowed to reach a LoadBalancer."),
                        },
                    }
                ),
                "ingress": _obj(
                    {
                        "enabled": {"type": "boolean"},
                        "className": _string("The IngressClass; empty for the default."),
                        "host": _string(
                            "The gateway's DNS name; required when the Ingress is enabled.",
                            pattern=_DNS_NAME_OR_EMPTY,
                        ),
                        "annotations": _PASSTHROUGH_OBJECT,
                        "tls": _obj(
                            {
                                "secretName": _string(
                                    "A kubernetes.io/tls Secret for host; empty: no TLS"
                                    " at the Ingress (only behind another TLS terminator)."
                                )
                            }
                        ),
                    }
                ),
                "redis": _gateway_redis(),
                "resources": _RESOURCES,
                "podDisruptionBudget": _obj(
                    {"enabled": {"type": "boolean"}, "minAvailable": {"type": "integer"}}
                ),
                **_scheduling(),
            }
        ),
        "redis": _obj(
            {
                "bundled": _obj(
                    {
                        "enabled": {
                            "type": "boolean",
                            "description": "A single-node Redis without persistence or"
                            " password, for trials only.",
                        },
                        "image": _obj(
                            {
                                "repository": _string("Redis image.", minLength=1),
                                "tag": _string("A pinned Redis version.", minLength=1),
                            }
                        ),
                        "resources": _RESOURCES,
                    }
                )
            }
        ),
        "networkPolicy": _obj(
            {
                "enabled": {"type": "boolean"},
                "apiServer": _obj({"cidrs": _CIDRS, "ports": _PORTS}),
                "redis": _obj({"cidrs": _CIDRS, "ports": _PORTS}),
                "objectStore": _obj({"cidrs": _CIDRS, "ports": _PORTS}),
                "gatewayFrom": _PASSTHROUGH_LIST,
                "webhookPorts": _PORTS,
            }
        ),
        "monitoring": _obj(
            {
                "serviceMonitor": _obj(
                    {
                        "enabled": {"type": "boolean"},
                        "interval": _string("Scrape interval.", pattern=r"^[0-9]+(ms|s|m|h)$"),
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    }
                ),
                "prometheusRule": _obj(
                    {
                        "enabled": {"type": "boolean"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "groups": _PASSTHROUGH_LIST,
                    }
                ),
            }
        ),
        "priorityClasses": _obj(
            {
                "create": {
                    "type": "boolean",
                    "description": "Create the PriorityClasses where the workers run"
                    " (region mode or an in-cluster region).",
                },
                "classes": {
                    "type": "array",
                    "items": _obj(
                        {
                            "name": _string(
                                "PriorityClass name, as a profile's priorityClassName says it.",
                                pattern=meta.DNS_LABEL_PATTERN,
                                maxLength=63,
                            ),
                            "value": {
                                "type": "integer",
                                "minimum": 0,
                                "maximum": 1_000_000_000,
                                "description": "Higher preempts lower when a region is full.",
                            },
                            "description": _string("What the class is for."),
                            "preemptionPolicy": {
                                "enum": ["PreemptLowerPriority", "Never"],
                                "description": "Never: wait for room instead of preempting.",
                            },
                        },
                        required=["name", "value"],
                    ),
                },
            },
            required=["create", "classes"],
        ),
        "argocd": _obj(
            {
                "healthChecks": {
                    "type": "boolean",
                    "description": "Render argocd-cm's health checks for Tenant and"
                    " ImageBatch (resource.customizations.health.*, gitops/health/*.lua).",
                },
                "namespace": _string(
                    "The namespace of Argo CD's argocd-cm.",
                    pattern=meta.DNS_LABEL_PATTERN,
                    maxLength=63,
                ),
            },
            required=["healthChecks", "namespace"],
        ),
    }


def values_schema() -> dict[str, Any]:
    """The chart's values.schema.json as a JSON Schema (draft 2020-12) document."""
    config = _without_titles(operatorconfig.OperatorConfig.model_json_schema(by_alias=True))
    defs = config.pop("$defs")
    regions = config["properties"]["regions"]
    for name in _CHART_OWNED_CONFIG:
        del config["properties"][name]
    config.pop("required", None)
    config["description"] = (
        "The operator config (operatorconfig.OperatorConfig) but for regions and"
        " operatorNamespace, which the chart sets."
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Values of the imagegen chart",
        "type": "object",
        "additionalProperties": False,
        "required": ["mode", "image", "regions"],
        "properties": {
            **_chart_properties(),
            "regions": regions,
            "config": config,
            "tenants": {
                "type": "object",
                "description": "Tenants to create, by name, with the spec a Tenant takes.",
                # Tenant names are DNS labels: they name namespaces, Secrets, label values.
                "propertyNames": {"pattern": meta.DNS_LABEL_PATTERN, "maxLength": 63},
                "additionalProperties": tenant_spec_schema(),
            },
        },
        "$defs": defs,
    }


def tenant_spec_schema() -> dict[str, Any]:
    """The Tenant CRD's spec schema as plain JSON Schema: the apiserver's own bounds,
    without the Kubernetes extensions, and refusing unknown keys as the model does."""
    spec = crd.schema(tenant.Tenant)["properties"]["spec"]
    return _closed(_without_kubernetes_extensions(spec))


def dump(schema: Mapping[str, Any]) -> str:
    """Stable JSON text, as committed in charts/imagegen/values.schema.json."""
    return json.dumps(schema, indent=2) + "\n"


def _without_titles(node: Any) -> Any:
    if isinstance(node, dict):
        # A field named "title" is a property, not the keyword; only drop the keyword.
        return {
            key: (
                {name: _without_titles(sub) for name, sub in value.items()}
                if key in ("properties", "$defs")
                else _without_titles(value)
            )
            for key, value in node.items()
            if key != "title"
        }
    if isinstance(node, list):
        return [_without_titles(element) for element in node]
    return copy.deepcopy(node)


def _without_kubernetes_extensions(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _without_kubernetes_extensions(value)
            for key, value in node.items()
            if not key.startswith("x-kubernetes-")
        }
    if isinstance(node, list):
        return [_without_kubernetes_extensions(element) for element in node]
    return node


def _closed(node: dict[str, Any]) -> dict[str, Any]:
    """Every object with named properties refuses others (the CRD prunes them silently)."""
    out = dict(node)
    if "properties" in out:
        out["properties"] = {name: _closed(sub) for name, sub in out["properties"].items()}
        out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = _closed(out["items"])
    return out
