{{/*
Names. Kubernetes names are limited to 63 characters (DNS-1123 labels).
*/}}
{{- define "cast-gatekeeper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cast-gatekeeper.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cast-gatekeeper.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cast-gatekeeper.namespace" -}}
{{- .Release.Namespace }}
{{- end }}

{{- define "cast-gatekeeper.api.fullname" -}}
{{- printf "%s-api" (include "cast-gatekeeper.fullname" . | trunc 59 | trimSuffix "-") }}
{{- end }}

{{- define "cast-gatekeeper.operator.fullname" -}}
{{- printf "%s-operator" (include "cast-gatekeeper.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/*
Labels. Selector labels are name + instance + component only: they are immutable.
*/}}
{{- define "cast-gatekeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cast-gatekeeper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cast-gatekeeper.labels" -}}
{{ include "cast-gatekeeper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cast-gatekeeper
helm.sh/chart: {{ include "cast-gatekeeper.chart" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Usage: include "cast-gatekeeper.componentLabels" (dict "ctx" $ "component" "api") */}}
{{- define "cast-gatekeeper.componentLabels" -}}
{{ include "cast-gatekeeper.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "cast-gatekeeper.componentSelectorLabels" -}}
{{ include "cast-gatekeeper.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
metadata.annotations (commonAnnotations + the dict in .extra), already indented for metadata;
renders nothing when there are none. Usage: {{- include "cast-gatekeeper.annotations" (dict "ctx" $ "extra" $x) }}
*/}}
{{- define "cast-gatekeeper.annotations" -}}
{{- $all := merge (dict) (.extra | default dict) (.ctx.Values.commonAnnotations | default dict) }}
{{- with $all }}
{{- printf "annotations:\n%s" (toYaml . | indent 2) | nindent 2 }}
{{- end }}
{{- end }}

{{/*
ServiceAccounts.
*/}}
{{- define "cast-gatekeeper.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- default (include "cast-gatekeeper.api.fullname" .) .Values.api.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cast-gatekeeper.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "cast-gatekeeper.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image: repository@digest when a digest is given, else repository:tag (tag defaults to appVersion).
*/}}
{{- define "cast-gatekeeper.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Secrets and ConfigMaps.
*/}}
{{- define "cast-gatekeeper.livekitSecretName" -}}
{{- default (printf "%s-livekit" (include "cast-gatekeeper.fullname" . | trunc 55 | trimSuffix "-")) .Values.livekit.existingSecret }}
{{- end }}

{{- define "cast-gatekeeper.signingKeySecretName" -}}
{{- default (printf "%s-signing-key" (include "cast-gatekeeper.fullname" . | trunc 51 | trimSuffix "-")) .Values.linkSigningKey.existingSecret }}
{{- end }}

{{- define "cast-gatekeeper.placesConfigMapName" -}}
{{- default (printf "%s-places" (include "cast-gatekeeper.fullname" . | trunc 56 | trimSuffix "-")) .Values.places.static.existingConfigMap }}
{{- end }}

{{- define "cast-gatekeeper.placesMountPath" -}}
/etc/cast-gatekeeper/places
{{- end }}

{{/*
Operator peering: on when more than one operator replica runs.
*/}}
{{- define "cast-gatekeeper.peeringEnabled" -}}
{{- if gt (int .Values.operator.replicas) 1 }}true{{- end }}
{{- end }}

{{- define "cast-gatekeeper.peeringName" -}}
{{- default (include "cast-gatekeeper.fullname" .) .Values.operator.peering.name }}
{{- end }}

{{/*
Effective API replicas (the HPA minimum when autoscaling): decides whether a PDB makes sense.
*/}}
{{- define "cast-gatekeeper.api.effectiveReplicas" -}}
{{- if .Values.api.autoscaling.enabled }}
{{- .Values.api.autoscaling.minReplicas | int }}
{{- else }}
{{- .Values.api.replicas | int }}
{{- end }}
{{- end }}

{{/*
Checksum of everything that reaches the pods through env/ConfigMaps, so a change rolls them.
The generated signing key is not in it (it only changes when someone edits the Secret).
*/}}
{{- define "cast-gatekeeper.configChecksum" -}}
{{- $parts := dict "config" .Values.config "places" .Values.places "livekit" .Values.livekit "keys" .Values.linkSigningKey }}
{{- toJson $parts | sha256sum }}
{{- end }}

{{/*
Environment shared by both processes (Settings in cast_core/settings.py; names = validation_alias).
*/}}
{{- define "cast-gatekeeper.env" -}}
- name: CAST_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: LIVEKIT_URL
  value: {{ .Values.livekit.url | quote }}
- name: LIVEKIT_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "cast-gatekeeper.livekitSecretName" . }}
      key: {{ .Values.livekit.secretKeys.apiKey }}
- name: LIVEKIT_API_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "cast-gatekeeper.livekitSecretName" . }}
      key: {{ .Values.livekit.secretKeys.apiSecret }}
- name: CAST_LINK_SIGNING_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "cast-gatekeeper.signingKeySecretName" . }}
      key: {{ .Values.linkSigningKey.secretKey }}
- name: CAST_LINK_TTL
  value: {{ .Values.config.linkTTL | int64 | quote }}
- name: CAST_RETENTION
  value: {{ .Values.config.retention | int64 | quote }}
- name: CAST_RESYNC_INTERVAL
  value: {{ .Values.config.resyncInterval | toString | quote }}
- name: CAST2_URL
  value: {{ .Values.config.cast2Url | quote }}
- name: SCENE_ROOM_PREFIX
  value: {{ .Values.config.sceneRoomPrefix | quote }}
- name: WORLD_ROOM_PREFIX
  value: {{ .Values.config.worldRoomPrefix | quote }}
- name: CAST_CORS_ORIGINS
  value: {{ .Values.config.corsOrigins | quote }}
- name: CAST_HTTP_BASE_URL
  value: {{ .Values.config.httpBaseUrl | quote }}
- name: CAST_MAX_BODY_BYTES
  value: {{ .Values.config.maxBodyBytes | int64 | quote }}
- name: PLACES_API_URL
  value: {{ .Values.config.placesApiUrl | quote }}
- name: LAMBDAS_URL
  value: {{ .Values.config.lambdasUrl | quote }}
- name: WORLD_CONTENT_URL
  value: {{ .Values.config.worldContentUrl | quote }}
- name: CAST_LAND_LEASE_URL
  value: {{ .Values.config.landLeaseUrl | quote }}
- name: CATALYST_URL
  value: {{ .Values.config.catalystUrl | quote }}
- name: CAST_UPSTREAM_TIMEOUT
  value: {{ .Values.config.upstreamTimeout | toString | quote }}
- name: CAST_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: CAST_PLACES_BACKEND
  value: {{ .Values.places.backend | quote }}
{{- if .Values.places.static.enabled }}
- name: CAST_PLACES_FILE
  value: {{ printf "%s/%s" (include "cast-gatekeeper.placesMountPath" .) .Values.places.static.key | quote }}
{{- end }}
- name: CAST_OPERATOR_METRICS_PORT
  value: {{ .Values.operator.metricsPort | int | quote }}
{{- end }}

{{/* Volumes shared by both pods: a writable /tmp (root filesystem is read-only) and the places file. */}}
{{- define "cast-gatekeeper.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.places.static.enabled }}
- name: places
  configMap:
    name: {{ include "cast-gatekeeper.placesConfigMapName" . }}
    items:
      - key: {{ .Values.places.static.key }}
        path: {{ .Values.places.static.key }}
{{- end }}
{{- end }}

{{- define "cast-gatekeeper.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.places.static.enabled }}
- name: places
  mountPath: {{ include "cast-gatekeeper.placesMountPath" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* NetworkPolicy egress rules of both pods; .api adds HTTPS to the upstreams. */}}
{{- define "cast-gatekeeper.networkPolicy.egress" -}}
{{- $np := .ctx.Values.networkPolicy }}
{{- /* A rule without ports allows every port: render each rule only when it has ports. */}}
{{- with $np.egress.dnsPorts }}
- ports:
    {{- range . }}
    - port: {{ . }}
      protocol: UDP
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- with $np.egress.apiServerPorts }}
- ports:
    {{- range . }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $np.egress.apiServerCIDRs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
{{- with $np.egress.livekitPorts }}
- ports:
    {{- range . }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $np.egress.livekitCIDRs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
{{- if and .api $np.egress.upstreamHttps }}
- ports:
    - port: 443
      protocol: TCP
{{- end }}
{{- with $np.egress.extra }}
{{ toYaml . }}
{{- end }}
{{- end }}
