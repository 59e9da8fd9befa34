{{/* Chart name, at most 63 characters (a DNS label). */}}
{{- define "kubetrain.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects. Names get a suffix such as "-controller", so the base is cut
to 52 characters to leave room for it.
*/}}
{{- define "kubetrain.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kubetrain.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object of the release. */}}
{{- define "kubetrain.labels" -}}
helm.sh/chart: {{ include "kubetrain.chart" . }}
app.kubernetes.io/name: {{ include "kubetrain.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "kubetrain.imageTag" . | quote }}
app.kubernetes.io/part-of: kubetrain
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the controller pods (immutable in a Deployment: never add to them). */}}
{{- define "kubetrain.controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubetrain.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "kubetrain.controller.labels" -}}
{{ include "kubetrain.labels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "kubetrain.trainer.labels" -}}
{{ include "kubetrain.labels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: trainer
{{- end }}

{{- define "kubetrain.controller.fullname" -}}
{{- printf "%s-controller" (include "kubetrain.fullname" .) }}
{{- end }}

{{- define "kubetrain.controller.serviceAccountName" -}}
{{- default (include "kubetrain.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- end }}

{{- define "kubetrain.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* The kubetrain image reference: repository@digest, else repository:tag. */}}
{{- define "kubetrain.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "kubetrain.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Restricted Pod Security Standard: every pod runs as a non-root numeric user with the runtime's
default seccomp profile, no privilege escalation, no capabilities and a read-only root.
*/}}
{{- define "kubetrain.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "kubetrain.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* Selector labels of the gateway pods (immutable in a Deployment: never add to them). */}}
{{- define "kubetrain.gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubetrain.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "kubetrain.gateway.labels" -}}
{{ include "kubetrain.labels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "kubetrain.gateway.fullname" -}}
{{- printf "%s-gateway" (include "kubetrain.fullname" .) }}
{{- end }}

{{- define "kubetrain.gateway.serviceAccountName" -}}
{{- default (include "kubetrain.gateway.fullname" .) .Values.gateway.serviceAccount.name }}
{{- end }}

{{- define "kubetrain.test.labels" -}}
{{ include "kubetrain.labels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: test
{{- end }}
