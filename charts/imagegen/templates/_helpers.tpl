{{/*
Names are fixed, not prefixed with the release: the ServiceAccount names are what the
regional kubeconfigs and manifests/rbac name, and the ClusterRoles are cluster-wide, so
one release of this chart per cluster.
*/}}

{{- define "imagegen.labels" -}}
app.kubernetes.io/name: imagegen
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: imagegen
{{- end }}

{{/* Labels of one component; call with (dict "root" $ "component" "operator"). */}}
{{- define "imagegen.componentLabels" -}}
{{ include "imagegen.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The selector of one component's pods: stable across upgrades. */}}
{{- define "imagegen.selector" -}}
app.kubernetes.io/name: imagegen
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "imagegen.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Any region reached in-cluster needs the regional objects in this cluster too. */}}
{{- define "imagegen.hasInClusterRegion" -}}
{{- range .Values.regions }}{{ if .inCluster }}true{{ end }}{{ end }}
{{- end }}

{{- define "imagegen.workersNamespace" -}}
{{ (.Values.config.workers | default dict).namespace | default "imagegen-workers" }}
{{- end }}

{{/* Restricted Pod Security for a pod (runAsUser is the image's non-root user). */}}
{{- define "imagegen.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "imagegen.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
{{- end }}

{{/* The gateway's settings file: gateway.settings, with what the chart decides on top. */}}
{{- define "imagegen.gatewaySettings" -}}
{{- $owned := dict "host" "0.0.0.0" "port" .Values.gateway.port "operator_namespace" .Release.Namespace -}}
{{- $stores := dict -}}
{{- range .Values.regions }}{{- if .storage }}{{- $_ := set $stores .name .storage }}{{- end }}{{- end }}
{{- if $stores }}
{{- $_ := set $owned "stores" $stores -}}
{{- $_ := set $owned "store_credentials_dir" "/etc/imagegen/stores" -}}
{{- end }}
{{- $redis := include "imagegen.gatewayRedisSettings" . | fromYaml -}}
{{- if $redis }}
{{- $_ := set $owned "redis" $redis -}}
{{- end }}
{{ toYaml (merge $owned (deepCopy .Values.gateway.settings)) }}
{{- end }}

{{/* The settings file's `redis` (gateway/settings.py GatewayRedis): gateway.redis's
timeouts and retries, and the files of its CA bundle and password. The URL is not in it:
it comes from the environment, since it may come whole from a Secret. */}}
{{- define "imagegen.gatewayRedisSettings" -}}
{{- $values := .Values.gateway.redis -}}
{{- $redis := pick $values "connectTimeoutSeconds" "commandTimeoutSeconds" "retry" -}}
{{- if $values.ca }}
{{- $_ := set $redis "caFile" "/etc/imagegen/redis/ca.crt" -}}
{{- end }}
{{- if $values.passwordSecret }}
{{- $_ := set $redis "passwordFile" "/etc/imagegen/redis/password" -}}
{{- end }}
{{- if $redis }}{{ toYaml $redis }}{{ end }}
{{- end }}

{{/* The management Redis the gateway uses: the values' URL, else the bundled one. */}}
{{- define "imagegen.gatewayRedisURL" -}}
{{- if .Values.gateway.redis.url -}}
{{ .Values.gateway.redis.url }}
{{- else if .Values.redis.bundled.enabled -}}
redis://imagegen-redis.{{ .Release.Namespace }}.svc:6379/0
{{- else -}}
{{ fail "gateway.redis.url: set the management Redis URL, or enable redis.bundled for a trial" }}
{{- end -}}
{{- end }}

{{/* The operator config file, from regions and config. */}}
{{- define "imagegen.operatorConfig" -}}
{{- $workers := merge (dict) (.Values.config.workers | default dict) (dict "image" (include "imagegen.image" .) "imagePullPolicy" .Values.image.pullPolicy) -}}
{{- $config := merge (dict "regions" .Values.regions "operatorNamespace" .Release.Namespace "workers" $workers) (omit .Values.config "workers") -}}
{{ toYaml $config }}
{{- end }}

{{/* Egress every component that talks to Kubernetes and Redis needs. */}}
{{- define "imagegen.egressCommon" -}}
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
- to:
    {{- range .Values.networkPolicy.apiServer.cidrs }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
  ports:
    {{- range .Values.networkPolicy.apiServer.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
- to:
    {{- range .Values.networkPolicy.redis.cidrs }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
    {{- if .Values.redis.bundled.enabled }}
    - podSelector:
        matchLabels:
          {{- include "imagegen.selector" (dict "root" . "component" "redis") | nindent 10 }}
    {{- end }}
  ports:
    {{- range .Values.networkPolicy.redis.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
{{- end }}

{{/* Egress to the regions' object stores (the operator deletes, the gateway reads). */}}
{{- define "imagegen.egressObjectStore" -}}
- to:
    {{- range .Values.networkPolicy.objectStore.cidrs }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
  ports:
    {{- range .Values.networkPolicy.objectStore.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
{{- end }}
