{{/*
Names, labels and the per-service facts every template shares.
*/}}

{{- define "focom-o2ims.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "focom-o2ims.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "focom-o2ims.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "focom-o2ims.selectorLabels" -}}
app.kubernetes.io/name: {{ include "focom-o2ims.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "focom-o2ims.labels" -}}
helm.sh/chart: {{ include "focom-o2ims.chart" . }}
{{ include "focom-o2ims.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: focom-o2ims
{{- end -}}

{{/*
The five services, in a fixed order. Per service: the values key, the Python module, the settings
environment prefix, the Kubernetes name suffix, and what it needs:
  mgmt  - a kubeconfig of the management cluster (CAPI/BYOH objects)
  inv   - the inventory file
*/}}
{{- define "focom-o2ims.services" -}}
focom: {module: focom, prefix: O2_FOCOM_, component: focom, mgmt: false, inv: true}
o2ims: {module: o2ims, prefix: O2_O2IMS_, component: o2ims, mgmt: false, inv: false}
hostprep: {module: hostprep, prefix: O2_HOSTPREP_, component: hostprep, mgmt: true, inv: true}
capiRenderer: {module: capi_renderer, prefix: O2_CAPI_RENDERER_, component: capi-renderer, mgmt: true, inv: false}
statusWatcher: {module: status_watcher, prefix: O2_STATUS_WATCHER_, component: status-watcher, mgmt: true, inv: false}
{{- end -}}

{{- define "focom-o2ims.serviceOrder" -}}
{{- list "focom" "o2ims" "hostprep" "capiRenderer" "statusWatcher" | toJson -}}
{{- end -}}

{{/* The name of one service's objects: <fullname>-<component>. Call with (dict "root" $ "component" "x"). */}}
{{- define "focom-o2ims.componentName" -}}
{{- printf "%s-%s" (include "focom-o2ims.fullname" .root | trunc 48 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "focom-o2ims.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Paths inside the pods. */}}
{{- define "focom-o2ims.paths" -}}
root: /etc/focom-o2ims
kubeconfig: /etc/focom-o2ims/kube/config
management: /etc/focom-o2ims/management
inventory: /etc/focom-o2ims/inventory
templates: /etc/focom-o2ims/templates
cni: /etc/focom-o2ims/cni
ssh: /etc/focom-o2ims/ssh
hostKeys: /etc/focom-o2ims/host-keys
natsCreds: /etc/focom-o2ims/nats-auth
natsTls: /etc/focom-o2ims/nats-tls
{{- end -}}

{{/* Whether the management cluster is the one this release runs in ("true"/""). */}}
{{- define "focom-o2ims.inClusterManagement" -}}
{{- if not .Values.managementCluster.kubeconfigSecret -}}true{{- end -}}
{{- end -}}

{{/*
The namespaces of the clusters' objects, as a JSON list: managementCluster.namespaces, else the release
namespace; [] (every namespace, ClusterRoles) only with managementCluster.allNamespaces.
*/}}
{{- define "focom-o2ims.workloadNamespaces" -}}
{{- if .Values.managementCluster.allNamespaces -}}
{{- list | toJson -}}
{{- else -}}
{{- .Values.managementCluster.namespaces | default (list .Release.Namespace) | toJson -}}
{{- end -}}
{{- end -}}

{{- define "focom-o2ims.natsUrl" -}}
{{- if .Values.nats.url -}}
{{- .Values.nats.url -}}
{{- else -}}
{{- printf "nats://%s-nats:4222" (include "focom-o2ims.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The Secret with every role's NATS credentials (perService: key <role> = password; creds: <role>.creds). */}}
{{- define "focom-o2ims.natsAuthSecret" -}}
{{- default (printf "%s-nats-users" (include "focom-o2ims.fullname" .)) .Values.nats.auth.existingSecret -}}
{{- end -}}

{{/*
Every NATS role and its permissions (role -> {publish, subscribe}), from files/nats-permissions.json, which
is generated from shared/subjects.py (`python -m shared.natsauth permissions`) and checked by the chart tests.
*/}}
{{- define "focom-o2ims.natsPermissions" -}}
{{- .Files.Get "files/nats-permissions.json" -}}
{{- end -}}

{{- define "focom-o2ims.sshSecret" -}}
{{- default (printf "%s-ssh" (include "focom-o2ims.fullname" .)) .Values.ssh.existingSecret -}}
{{- end -}}

{{- define "focom-o2ims.hostKeysSecret" -}}
{{- default (printf "%s-host-keys" (include "focom-o2ims.fullname" .)) .Values.ssh.hostKeys.existingSecret -}}
{{- end -}}

{{/* Whether an SSH key Secret is mounted ("true"/""). */}}
{{- define "focom-o2ims.hasSsh" -}}
{{- if or .Values.ssh.existingSecret .Values.ssh.privateKey -}}true{{- end -}}
{{- end -}}

{{/* The host-key files hostprep gets, as a JSON list of file names. */}}
{{- define "focom-o2ims.hostKeyFiles" -}}
{{- $files := list -}}
{{- if .Values.ssh.hostKeys.existingSecret -}}
{{- $files = .Values.ssh.hostKeys.existingSecretKeys -}}
{{- else -}}
{{- if .Values.ssh.hostKeys.knownHosts -}}{{- $files = append $files "known_hosts" -}}{{- end -}}
{{- if .Values.ssh.hostKeys.pinned -}}{{- $files = append $files "pinned_host_keys.yaml" -}}{{- end -}}
{{- end -}}
{{- $files | toJson -}}
{{- end -}}

{{/* The inventory source: "configMap:<name>", "secret:<name>" or "". */}}
{{- define "focom-o2ims.inventorySource" -}}
{{- $inv := .Values.inventory -}}
{{- if $inv.existingSecret -}}
secret:{{ $inv.existingSecret }}
{{- else if $inv.existingConfigMap -}}
configMap:{{ $inv.existingConfigMap }}
{{- else if $inv.content -}}
configMap:{{ include "focom-o2ims.fullname" . }}-inventory
{{- end -}}
{{- end -}}

{{- define "focom-o2ims.templatesConfigMap" -}}
{{- if .Values.focomTemplates.existingConfigMap -}}
{{- .Values.focomTemplates.existingConfigMap -}}
{{- else if .Values.focomTemplates.templates -}}
{{- include "focom-o2ims.fullname" . }}-templates
{{- end -}}
{{- end -}}

{{/* CNI names, as a JSON list. */}}
{{- define "focom-o2ims.cniNames" -}}
{{- if .Values.cni.existingConfigMap -}}
{{- .Values.cni.names | toJson -}}
{{- else -}}
{{- keys .Values.cni.manifests | sortAlpha | toJson -}}
{{- end -}}
{{- end -}}

{{- define "focom-o2ims.cniConfigMap" -}}
{{- default (printf "%s-cni" (include "focom-o2ims.fullname" .)) .Values.cni.existingConfigMap -}}
{{- end -}}

{{/*
Whether a service talks to a Kubernetes API with its ServiceAccount ("true"/""), i.e. whether its pods
need a token. Call with (dict "root" $ "key" "focom").
*/}}
{{- define "focom-o2ims.usesServiceAccount" -}}
{{- $v := .root.Values -}}
{{- if eq .key "focom" -}}
{{- if $v.services.focom.watchCRs -}}true{{- end -}}
{{- else if eq .key "o2ims" -}}
{{- if $v.services.o2ims.mirror.enabled -}}true{{- end -}}
{{- else -}}
{{- include "focom-o2ims.inClusterManagement" .root -}}
{{- end -}}
{{- end -}}

{{/* One settings value as an environment variable string: strings as they are, the rest as JSON. */}}
{{- define "focom-o2ims.envValue" -}}
{{- if kindIs "string" . -}}
{{- . -}}
{{- else -}}
{{- toJson . -}}
{{- end -}}
{{- end -}}
