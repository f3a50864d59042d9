{{/*
kvstore.name is the operator's app.kubernetes.io/name. It is deliberately not
"kvstore": the pods of a KVStore are selected by app.kubernetes.io/name=kvstore
plus app.kubernetes.io/instance=<KVStore name>, and a KVStore named after the
release would otherwise select the operator's pods too.
*/}}
{{- define "kvstore.name" -}}
{{- default "kvstore-operator" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* kvstore.fullname names the operator's objects: <release>-operator. */}}
{{- define "kvstore.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* kvstore.chart is the helm.sh/chart label. */}}
{{- define "kvstore.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* kvstore.imageTag is the operator image's tag. */}}
{{- define "kvstore.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* kvstore.version is the app.kubernetes.io/version label: the operator's tag. */}}
{{- define "kvstore.version" -}}
{{- regexReplaceAll "[^A-Za-z0-9_.-]" (include "kvstore.imageTag" .) "_" | trunc 63 | trimAll "_.-" }}
{{- end }}

{{/*
kvstore.labels are the recommended labels. Call with
(dict "ctx" $ "component" "operator") and optionally "name" to override
app.kubernetes.io/name.
*/}}
{{- define "kvstore.labels" -}}
{{- $ctx := .ctx -}}
helm.sh/chart: {{ include "kvstore.chart" $ctx }}
app.kubernetes.io/name: {{ .name | default (include "kvstore.name" $ctx) }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
{{- with include "kvstore.version" $ctx }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: kvstore
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
{{- end }}

{{/* kvstore.selectorLabels select the operator's pods; immutable once installed. */}}
{{- define "kvstore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kvstore.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* kvstore.serviceAccountName is the operator's ServiceAccount. */}}
{{- define "kvstore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kvstore.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* kvstore.leaderElectionNamespace holds the operator's Lease. */}}
{{- define "kvstore.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{/* kvstore.instanceName is the KVStore's name. */}}
{{- define "kvstore.instanceName" -}}
{{- default .Release.Name .Values.instance.name }}
{{- end }}

{{/* kvstore.instanceSpec is instance.spec, never nil. */}}
{{- define "kvstore.instanceSpec" -}}
{{- toYaml (default dict .Values.instance.spec) }}
{{- end }}

{{/* kvstore.authSecret is the Secret with the KVStore's admin token. */}}
{{- define "kvstore.authSecret" -}}
{{- $spec := include "kvstore.instanceSpec" . | fromYaml }}
{{- $auth := $spec.auth | default dict }}
{{- default (printf "%s-auth" (include "kvstore.instanceName" .)) $auth.secretName }}
{{- end }}

{{/* kvstore.serverImage is the KVStore's server image. */}}
{{- define "kvstore.serverImage" -}}
{{- $spec := include "kvstore.instanceSpec" . | fromYaml }}
{{- default .Values.defaultImage $spec.image }}
{{- end }}

{{/*
kvstore.validate stops the render on combinations the schema cannot express
readably.
*/}}
{{- define "kvstore.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: more than one operator would reconcile the same KVStores; enable leader election or set replicaCount to 1" (int .Values.replicaCount)) }}
{{- end }}
{{- if .Values.instance.enabled }}
{{- $name := include "kvstore.instanceName" . }}
{{- if or (gt (len $name) 52) (not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $name)) }}
{{- fail (printf "the KVStore name %q (instance.name, default: the release name) must be at most 52 characters of a-z, 0-9 and '-', starting with a letter" $name) }}
{{- end }}
{{- /*
Helm builds every object of a release before it creates any, and a KVStore
cannot be built while its CRD is unknown to the API server: a first install
with the CRD as a template cannot also create a KVStore. lookup answers only
when Helm talks to a cluster (not in helm template or lint).
*/}}
{{- if and (not (.Capabilities.APIVersions.Has "kvstore.dev/v1/KVStore")) (lookup "v1" "Namespace" "" "default") }}
{{- fail (printf "instance.enabled is true but the cluster does not know the KVStore CRD yet, and Helm cannot create a CRD and a KVStore in the same install. Install first without the instance (instance.enabled=false%s), then create it with: helm upgrade %s <chart> -n %s --reuse-values --set instance.enabled=true" (ternary "" "; with crds.install=false the CRD must come from elsewhere" .Values.crds.install) .Release.Name .Release.Namespace) }}
{{- end }}
{{- $replicas := (include "kvstore.instanceSpec" . | fromYaml).replicas | default 1 | int }}
{{- if eq (mod $replicas 2) 0 }}
{{- fail (printf "instance.spec.replicas is %d: it must be odd (1, 3, 5, 7 or 9). A Raft cluster of 2k servers needs k+1 of them for a quorum, so it survives no more failures than one of 2k-1 (2 survive none, 4 only one); use 3 to survive the loss of 1 server, 5 for 2" $replicas) }}
{{- end }}
{{- $tls := (include "kvstore.instanceSpec" . | fromYaml).tls | default dict }}
{{- if and $tls.secretName $tls.issuerRef }}
{{- fail "instance.spec.tls: set at most one of secretName (your certificate) and issuerRef (cert-manager issues one)" }}
{{- end }}
{{- if and .Values.watchNamespace (ne .Values.watchNamespace .Release.Namespace) }}
{{- fail (printf "instance.enabled is true but watchNamespace is %q: the KVStore is created in the release namespace %q, which the operator would not watch" .Values.watchNamespace .Release.Namespace) }}
{{- end }}
{{- end }}
{{- end }}
