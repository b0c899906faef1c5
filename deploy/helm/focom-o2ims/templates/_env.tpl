{{/*
The environment of one service's container. Call with (dict "root" $ "key" "<values key>").
Settings come from three places: the common `settings` map (O2_<FIELD>), the service's `settings`
map (<prefix><FIELD>), and the fields the chart derives from other values (paths of mounted files,
the NATS connection, the HTTP listener). values.schema.json keeps the first two to real field names;
the derived ones are not accepted in those maps.
*/}}
{{- define "focom-o2ims.env" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $key := .key -}}
{{- $spec := index (include "focom-o2ims.services" $root | fromYaml) $key -}}
{{- $paths := include "focom-o2ims.paths" $root | fromYaml -}}
{{- $svc := index $v.services $key -}}
{{- $p := $spec.prefix -}}
- name: O2_NATS_URL
  value: {{ include "focom-o2ims.natsUrl" $root | quote }}
- name: O2_HTTP_HOST
  value: "0.0.0.0"
- name: O2_HTTP_PORT
  value: {{ $v.http.port | toString | quote }}
{{- $auth := $v.nats.auth }}
{{- $authSecret := include "focom-o2ims.natsAuthSecret" $root }}
{{- /* The service's own NATS identity: its role is its module name. */}}
{{- if eq $auth.method "perService" }}
- name: O2_NATS_USER
  value: {{ $spec.module | quote }}
- name: O2_NATS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $authSecret }}, key: {{ $spec.module }}}
{{- else if eq $auth.method "creds" }}
- name: O2_NATS_CREDS_FILE
  value: {{ printf "%s/%s.creds" $paths.natsCreds $spec.module | quote }}
{{- end }}
{{- if $v.nats.tls.enabled }}
- name: O2_NATS_TLS_CA
  value: {{ printf "%s/ca.crt" $paths.natsTls | quote }}
{{- if $v.nats.tls.clientCertificate }}
- name: O2_NATS_TLS_CERT
  value: {{ printf "%s/tls.crt" $paths.natsTls | quote }}
- name: O2_NATS_TLS_KEY
  value: {{ printf "%s/tls.key" $paths.natsTls | quote }}
{{- end }}
{{- end }}
{{- range $field, $value := $v.settings }}
{{- if not (kindIs "invalid" $value) }}
- name: {{ printf "O2_%s" (upper $field) }}
  value: {{ include "focom-o2ims.envValue" $value | quote }}
{{- end }}
{{- end }}
{{- $mgmtConfig := $paths.kubeconfig }}
{{- if not (include "focom-o2ims.inClusterManagement" $root) }}
{{- $mgmtConfig = printf "%s/%s" $paths.management $v.managementCluster.kubeconfigKey }}
{{- end }}
{{- $inventory := include "focom-o2ims.inventorySource" $root }}
{{- $inventoryFile := printf "%s/%s" $paths.inventory $v.inventory.key }}
{{- if eq $key "focom" }}
- name: O2_FOCOM_INVENTORY_PATH
  value: {{ $inventoryFile | quote }}
- name: O2_FOCOM_SSH_KEY_DIR
  value: {{ $paths.ssh | quote }}
{{- if include "focom-o2ims.templatesConfigMap" $root }}
- name: O2_FOCOM_TEMPLATES_DIR
  value: {{ $paths.templates | quote }}
{{- end }}
- name: O2_FOCOM_KUBE_ENABLED
  value: {{ $svc.watchCRs | toString | quote }}
{{- if $svc.crNamespace }}
- name: O2_FOCOM_CR_NAMESPACE
  value: {{ $svc.crNamespace | quote }}
{{- end }}
{{- else if eq $key "o2ims" }}
- name: O2_O2IMS_MIRROR_ENABLED
  value: {{ $svc.mirror.enabled | toString | quote }}
{{- if $svc.mirror.enabled }}
- name: O2_O2IMS_MIRROR_KUBECONFIG
  value: {{ $paths.kubeconfig | quote }}
{{- end }}
{{- else if eq $key "hostprep" }}
- name: O2_HOSTPREP_KUBECONFIG
  value: {{ $mgmtConfig | quote }}
- name: O2_HOSTPREP_SSH_KEY_DIR
  value: {{ $paths.ssh | quote }}
{{- if $inventory }}
- name: O2_HOSTPREP_INVENTORY_FILE
  value: {{ $inventoryFile | quote }}
{{- end }}
{{- if include "focom-o2ims.hasSsh" $root }}
- name: O2_HOSTPREP_SSH_KEY_FILE
  value: {{ printf "%s/ssh-privatekey" $paths.ssh | quote }}
{{- if or $v.ssh.passphrase (and $v.ssh.existingSecret $v.ssh.existingSecretHasPassphrase) }}
- name: O2_HOSTPREP_SSH_KEY_PASSPHRASE
  valueFrom:
    secretKeyRef: {name: {{ include "focom-o2ims.sshSecret" $root }}, key: passphrase}
{{- end }}
{{- end }}
{{- $hostKeyFiles := include "focom-o2ims.hostKeyFiles" $root | fromJsonArray }}
{{- if has "known_hosts" $hostKeyFiles }}
- name: O2_HOSTPREP_KNOWN_HOSTS_FILE
  value: {{ printf "%s/known_hosts" $paths.hostKeys | quote }}
{{- end }}
{{- if has "pinned_host_keys.yaml" $hostKeyFiles }}
- name: O2_HOSTPREP_PINNED_HOST_KEYS_FILE
  value: {{ printf "%s/pinned_host_keys.yaml" $paths.hostKeys | quote }}
{{- end }}
{{- else if eq $key "capiRenderer" }}
- name: O2_CAPI_RENDERER_KUBECONFIG
  value: {{ $mgmtConfig | quote }}
{{- $manifests := dict }}
{{- range $name := include "focom-o2ims.cniNames" $root | fromJsonArray }}
{{- $_ := set $manifests $name (printf "%s/%s.yaml" $paths.cni $name) }}
{{- end }}
{{- if $manifests }}
- name: O2_CAPI_RENDERER_CNI_MANIFESTS
  value: {{ toJson $manifests | quote }}
{{- end }}
{{- else if eq $key "statusWatcher" }}
- name: O2_STATUS_WATCHER_KUBECONFIG
  value: {{ $mgmtConfig | quote }}
{{- $namespaces := include "focom-o2ims.workloadNamespaces" $root | fromJsonArray }}
{{- if $namespaces }}
- name: O2_STATUS_WATCHER_NAMESPACES
  value: {{ join "," $namespaces | quote }}
{{- end }}
{{- end }}
{{- range $field, $value := $svc.settings }}
{{- if not (kindIs "invalid" $value) }}
- name: {{ printf "%s%s" $p (upper $field) }}
  value: {{ include "focom-o2ims.envValue" $value | quote }}
{{- end }}
{{- end }}
{{- with $svc.env }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes and mounts of one service. Call with (dict "root" $ "key" "<values key>" "part" "volumes"|"mounts"). */}}
{{- define "focom-o2ims.volumes" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $key := .key -}}
{{- $spec := index (include "focom-o2ims.services" $root | fromYaml) $key -}}
{{- $paths := include "focom-o2ims.paths" $root | fromYaml -}}
{{- $svc := index $v.services $key -}}
{{- $fullname := include "focom-o2ims.fullname" $root -}}
{{- $items := list -}}
{{- $items = append $items (dict "name" "tmp" "path" "/tmp" "volume" (dict "emptyDir" (dict "sizeLimit" "256Mi"))) -}}
{{- $inCluster := include "focom-o2ims.inClusterManagement" $root -}}
{{- if or (and $spec.mgmt $inCluster) (and (eq $key "o2ims") $svc.mirror.enabled) -}}
{{- $items = append $items (dict "name" "kubeconfig" "path" (dir $paths.kubeconfig) "volume" (dict "configMap" (dict "name" (printf "%s-kubeconfig" $fullname)))) -}}
{{- end -}}
{{- if and $spec.mgmt (not $inCluster) -}}
{{- $items = append $items (dict "name" "management" "path" $paths.management "volume" (dict "secret" (dict "secretName" $v.managementCluster.kubeconfigSecret "defaultMode" 288 "items" (list (dict "key" $v.managementCluster.kubeconfigKey "path" $v.managementCluster.kubeconfigKey))))) -}}
{{- end -}}
{{- $inventory := include "focom-o2ims.inventorySource" $root -}}
{{- if and $spec.inv $inventory -}}
{{- $kind := splitList ":" $inventory | first -}}
{{- $source := splitList ":" $inventory | last -}}
{{- $inventoryItems := list (dict "key" $v.inventory.key "path" $v.inventory.key) -}}
{{- $volume := dict "configMap" (dict "name" $source "items" $inventoryItems) -}}
{{- if eq $kind "secret" -}}
{{- $volume = dict "secret" (dict "secretName" $source "defaultMode" 288 "items" $inventoryItems) -}}
{{- end -}}
{{- $items = append $items (dict "name" "inventory" "path" $paths.inventory "volume" $volume) -}}
{{- end -}}
{{- if eq $key "focom" -}}
{{- $templates := include "focom-o2ims.templatesConfigMap" $root -}}
{{- if $templates -}}
{{- $items = append $items (dict "name" "templates" "path" $paths.templates "volume" (dict "configMap" (dict "name" $templates))) -}}
{{- end -}}
{{- end -}}
{{- if eq $key "capiRenderer" -}}
{{- $names := include "focom-o2ims.cniNames" $root | fromJsonArray -}}
{{- if $names -}}
{{- $cniItems := list -}}
{{- range $name := $names -}}
{{- $cniItems = append $cniItems (dict "key" (printf "%s.yaml" $name) "path" (printf "%s.yaml" $name)) -}}
{{- end -}}
{{- $items = append $items (dict "name" "cni" "path" $paths.cni "volume" (dict "configMap" (dict "name" (include "focom-o2ims.cniConfigMap" $root) "items" $cniItems))) -}}
{{- end -}}
{{- end -}}
{{- if eq $key "hostprep" -}}
{{- if include "focom-o2ims.hasSsh" $root -}}
{{- $items = append $items (dict "name" "ssh" "path" $paths.ssh "volume" (dict "secret" (dict "secretName" (include "focom-o2ims.sshSecret" $root) "defaultMode" 288))) -}}
{{- end -}}
{{- $hostKeyFiles := include "focom-o2ims.hostKeyFiles" $root | fromJsonArray -}}
{{- if $hostKeyFiles -}}
{{- $hkItems := list -}}
{{- range $f := $hostKeyFiles -}}
{{- $hkItems = append $hkItems (dict "key" $f "path" $f) -}}
{{- end -}}
{{- $items = append $items (dict "name" "host-keys" "path" $paths.hostKeys "volume" (dict "secret" (dict "secretName" (include "focom-o2ims.hostKeysSecret" $root) "defaultMode" 288 "items" $hkItems))) -}}
{{- end -}}
{{- end -}}
{{- if eq $v.nats.auth.method "creds" -}}
{{- $credsFile := printf "%s.creds" $spec.module -}}
{{- $credsItems := list (dict "key" $credsFile "path" $credsFile) -}}
{{- $items = append $items (dict "name" "nats-auth" "path" $paths.natsCreds "volume" (dict "secret" (dict "secretName" (include "focom-o2ims.natsAuthSecret" $root) "defaultMode" 288 "items" $credsItems))) -}}
{{- end -}}
{{- if $v.nats.tls.enabled -}}
{{- $items = append $items (dict "name" "nats-tls" "path" $paths.natsTls "volume" (dict "secret" (dict "secretName" $v.nats.tls.existingSecret "defaultMode" 288))) -}}
{{- end -}}
{{- if eq .part "volumes" -}}
{{- range $item := $items }}
- name: {{ $item.name }}
{{ toYaml $item.volume | indent 2 }}
{{- end }}
{{- with $svc.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- else -}}
{{- range $item := $items }}
- name: {{ $item.name }}
  mountPath: {{ $item.path }}
  {{- if ne $item.name "tmp" }}
  readOnly: true
  {{- end }}
{{- end }}
{{- with $svc.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}
{{- end -}}
