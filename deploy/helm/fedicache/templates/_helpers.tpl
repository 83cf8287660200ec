{{/*
Names, labels and the configuration the templates share. Every check of the values that can
fail is here, in "fedicache.validate", with a message naming the value and the fix.
*/}}

{{- define "fedicache.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's objects: fedicache for a release named fedicache, as the Kustomize base. */}}
{{- define "fedicache.fullname" -}}
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

{{/* The headless Service of the replicas: cluster.peers. */}}
{{- define "fedicache.peersName" -}}
{{- printf "%s-peers" (include "fedicache.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "fedicache.configMapName" -}}
{{- printf "%s-config" (include "fedicache.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "fedicache.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "fedicache.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The replicas' pods: their labels, and every selector of them (Services, PDB, policy). */}}
{{- define "fedicache.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fedicache.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/* The backfill Job's pods: never selected by the Services. */}}
{{- define "fedicache.backfillLabels" -}}
app.kubernetes.io/name: {{ include "fedicache.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: backfill
{{- end }}

{{- define "fedicache.image" -}}
{{- $img := .Values.image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag | toString) }}
{{- end }}
{{- end }}

{{/* The port of a host:port listener key. */}}
{{- define "fedicache.port" -}}
{{- $key := index . 0 }}
{{- $addr := index . 1 | toString }}
{{- if not (regexMatch "^.*:[0-9]+$" $addr) }}
{{- fail (printf "config.%s: %q has no port: the container port follows it; use host:port, e.g. config.%s: \":%s\"" $key $addr $key (ternary "8080" "9090" (eq $key "listen"))) }}
{{- end }}
{{- regexReplaceAll "^.*:" $addr "" }}
{{- end }}

{{- define "fedicache.httpPort" -}}
{{- include "fedicache.port" (list "listen" (dig "listen" ":8080" .Values.config)) }}
{{- end }}

{{- define "fedicache.adminPort" -}}
{{- include "fedicache.port" (list "admin_listen" (dig "admin_listen" ":9090" .Values.config)) }}
{{- end }}

{{/* fallback.dir: where the old volume is mounted, "" for none. */}}
{{- define "fedicache.fallbackDir" -}}
{{- dig "fallback" "dir" "" .Values.config | toString }}
{{- end }}

{{/* cache.disk.dir: where the disk cache's emptyDir is mounted, "" for no disk tier. */}}
{{- define "fedicache.cacheDir" -}}
{{- dig "cache" "disk" "dir" "" .Values.config | toString }}
{{- end }}

{{/*
fedicache.yaml: config as given, with cluster.peers set to the headless Service unless config sets
it.
*/}}
{{- define "fedicache.configYAML" -}}
{{- $cfg := deepCopy (default dict .Values.config) }}
{{- $cluster := deepCopy (default dict (get $cfg "cluster")) }}
{{- if not (hasKey $cluster "peers") }}
{{- $_ := set $cluster "peers" (include "fedicache.peersName" .) }}
{{- end }}
{{- $_ := set $cfg "cluster" $cluster }}
{{- toYaml $cfg }}
{{- end }}

{{/*
The checks: values that would render objects fedicache cannot run with, or that would put
credentials in the ConfigMap. Included by every template, so `helm template` and `helm install`
stop with the first problem.
*/}}
{{- define "fedicache.validate" -}}
{{- if not .Values.existingSecret }}
{{- fail "existingSecret is empty: create the Secret with fedicache's credentials first (deploy/secret.example.yaml shows its keys), then set its name, e.g. --set existingSecret=fedicache" }}
{{- end }}
{{- $cfg := default dict .Values.config }}
{{- $secretKeys := dict "s3.access_key_id" "s3-access-key-id" "s3.secret_access_key" "s3-secret-access-key" "admin.token" "admin-token" "cache_buster.secret" "cache-buster-secret" "cloudflare.api_token" "cloudflare-api-token" }}
{{- range $key := keys $secretKeys | sortAlpha }}
{{- $parts := splitList "." $key }}
{{- if dig (index $parts 0) (index $parts 1) "" $cfg }}
{{- fail (printf "config.%s is set: the ConfigMap is no place for credentials; put the value in the Secret %s under the key %s and remove config.%s" $key $.Values.existingSecret (get $secretKeys $key) $key) }}
{{- end }}
{{- end }}
{{- range $i, $store := dig "fallback" "stores" list $cfg }}
{{- if kindIs "map" $store }}
{{- if or $store.access_key_id $store.secret_access_key }}
{{- fail (printf "config.fallback.stores[%d] (%s) has credentials: the ConfigMap is no place for them; name the store \"old\" and put them in the Secret %s under old-s3-access-key-id and old-s3-secret-access-key" $i (default "unnamed" $store.name) $.Values.existingSecret) }}
{{- end }}
{{- end }}
{{- end }}
{{- $dir := include "fedicache.fallbackDir" . }}
{{- if and .Values.oldVolume.existingClaim (not $dir) }}
{{- fail (printf "oldVolume.existingClaim is %s but config.fallback.dir is empty: set config.fallback.dir: /mnt/mastodon-system (where the chart mounts the volume), or oldVolume.existingClaim: \"\" once the volume is retired" .Values.oldVolume.existingClaim) }}
{{- end }}
{{- if and $dir (not .Values.oldVolume.existingClaim) }}
{{- fail (printf "config.fallback.dir is %s but oldVolume.existingClaim is empty: name Mastodon's system volume claim, e.g. oldVolume.existingClaim: mastodon-system, or set config.fallback.dir: \"\" to run without the old volume" $dir) }}
{{- end }}
{{- if and $dir (not (isAbs $dir)) }}
{{- fail (printf "config.fallback.dir %q is not an absolute path: it is where the old volume is mounted, e.g. config.fallback.dir: /mnt/mastodon-system" $dir) }}
{{- end }}
{{- $cacheDir := include "fedicache.cacheDir" . }}
{{- if and $cacheDir (not (isAbs $cacheDir)) }}
{{- fail (printf "config.cache.disk.dir %q is not an absolute path: it is where the cache's emptyDir is mounted, e.g. config.cache.disk.dir: /var/cache/fedicache" $cacheDir) }}
{{- end }}
{{- range $name, $path := dict "/etc/fedicache" "the configuration" "/tmp" "tmpVolume" }}
{{- if or (eq $dir $name) (eq $cacheDir $name) }}
{{- fail (printf "config.fallback.dir or config.cache.disk.dir is %s, where the chart mounts %s: use another folder, e.g. /mnt/mastodon-system and /var/cache/fedicache" $name $path) }}
{{- end }}
{{- end }}
{{- if and $dir (eq $dir $cacheDir) }}
{{- fail (printf "config.fallback.dir and config.cache.disk.dir are both %s: the old volume is read-only and the cache needs its own emptyDir; e.g. config.cache.disk.dir: /var/cache/fedicache" $dir) }}
{{- end }}
{{- if not (has .Values.placement.mode (list "spread" "same-node-as-mastodon" "single-node")) }}
{{- fail (printf "placement.mode %q: use spread, same-node-as-mastodon or single-node" .Values.placement.mode) }}
{{- end }}
{{- if eq (include "fedicache.httpPort" .) (include "fedicache.adminPort" .) }}
{{- fail "config.listen and config.admin_listen have the same port: give them two, e.g. config.listen: \":8080\" and config.admin_listen: \":9090\"" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail (printf "autoscaling.maxReplicas %d is below autoscaling.minReplicas %d: raise it, e.g. autoscaling.maxReplicas: 6" (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- end }}
{{- end }}

{{/*
The container's environment, the Deployment's and the backfill Job's alike: the credentials, by
the Secret's keys, as FEDICACHE_* variables, then extraEnv.
*/}}
{{- define "fedicache.env" -}}
{{- $secret := .Values.existingSecret -}}
- name: FEDICACHE_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: s3-access-key-id
- name: FEDICACHE_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: s3-secret-access-key
# Required: cluster.peers is set, and the replicas authenticate each other with it.
- name: FEDICACHE_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: admin-token
# Mastodon's CACHE_BUSTER_SECRET; needs cache_buster.secret_header in the config.
- name: FEDICACHE_CACHE_BUSTER_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: cache-buster-secret
      optional: true
# Purges busted URLs at Cloudflare; needs cloudflare.zone_id in the config.
- name: FEDICACHE_CLOUDFLARE_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: cloudflare-api-token
      optional: true
# The old bucket named "old" in fallback.stores (a move between providers): its read-only
# credentials. Leave the keys out of the Secret until you use them.
- name: FEDICACHE_FALLBACK_OLD_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: old-s3-access-key-id
      optional: true
- name: FEDICACHE_FALLBACK_OLD_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: old-s3-secret-access-key
      optional: true
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The pod's security context: the image's distroless "nonroot" user, or uid for the Job. */}}
{{- define "fedicache.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "fedicache.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* A required pod affinity: on the node of the pods labelled so. */}}
{{- define "fedicache.sameNodeAs" -}}
podAffinity:
  # One term only: the scheduler counts a pod for a node only when it matches every term, so
  # terms for two different apps could never be met.
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
{{- end }}
