package main

// The Kubernetes manifests in deploy/ are rendered here as kubectl apply -k would (kustomize's
// krusty), every object is decoded strictly into its Kubernetes API type, and what fedicache
// depends on is checked against the configuration the pods get, read by the same code as
// `fedicache serve --config`: ports, probes, mounts, sizes, the peers' Service, security.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fedicache/fedicache/backfill"
	"github.com/fedicache/fedicache/cache/state"
	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"github.com/fedicache/fedicache/origin"
	"github.com/fedicache/fedicache/proxy"
	"github.com/fedicache/fedicache/proxy/cluster"
	"github.com/spf13/viper"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// deployDir is deploy/ seen from this package's folder, where go test runs.
var deployDir = filepath.Join("..", "..", "deploy")

// manifestCase is one kustomization an admin may apply: a folder of deploy/ and the optional
// components added to it.
type manifestCase struct {
	name       string
	dir        string   // under deploy/
	components []string // under deploy/components/, in the order an overlay would list them
}

var manifestCases = []manifestCase{
	{name: "base", dir: "."},
	{name: "aws-s3", dir: "overlays/aws-s3"},
	{name: "cloudflare-r2", dir: "overlays/cloudflare-r2"},
	{name: "idrive-e2", dir: "overlays/idrive-e2"},
	{name: "minio", dir: "overlays/minio"},
	{name: "base+backfill+hpa", dir: ".", components: []string{"backfill", "hpa"}},
	{name: "idrive-e2+backfill+same-node-as-mastodon", dir: "overlays/idrive-e2", components: []string{"backfill", "same-node-as-mastodon"}},
	{name: "cloudflare-r2+single-node+hpa", dir: "overlays/cloudflare-r2", components: []string{"single-node", "hpa"}},
	{name: "minio+backfill", dir: "overlays/minio", components: []string{"backfill"}},
	{name: "aws-s3+hpa+network-policy", dir: "overlays/aws-s3", components: []string{"hpa", "network-policy"}},
}

const (
	// secretName is the Secret the workloads read their credentials from; deploy/secret.example.yaml
	// shows it.
	secretName = "fedicache"
	// placeholder is what every value of the example Secret holds.
	placeholder = "REPLACE_ME"
	// mastodonUID is the user of Mastodon's image and chart, the owner of the old volume's files.
	mastodonUID = 991
	// memoryHeadroomMin is what the container's memory must hold beyond the memory tier: the
	// runtime's soft limit adds memoryHeadroom (48 MiB), and the process needs a little more.
	memoryHeadroomMin = 64 << 20
	hostnameKey       = "kubernetes.io/hostname"
)

// noObjectACLs are the overlays for services that keep no object ACLs.
var noObjectACLs = map[string]bool{"cloudflare-r2": true, "minio": true}

// mastodonWebLabels select Mastodon's web pods in its Helm chart.
var mastodonWebLabels = map[string]string{"app.kubernetes.io/name": "mastodon", "app.kubernetes.io/component": "web"}

// manifests are the objects of one render, by type.
type manifests struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
	pdbs        []*policyv1.PodDisruptionBudget
	jobs        []*batchv1.Job
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	policies    []*networkingv1.NetworkPolicy
	namespaces  map[string]bool
}

// kinds maps each kind the manifests may hold to its API version and a decoder into its type.
var kinds = map[string]struct {
	apiVersion string
	add        func(m *manifests, raw []byte) error
}{
	"Deployment":              {"apps/v1", addStrict(func(m *manifests) *[]*appsv1.Deployment { return &m.deployments })},
	"Service":                 {"v1", addStrict(func(m *manifests) *[]*corev1.Service { return &m.services })},
	"ConfigMap":               {"v1", addStrict(func(m *manifests) *[]*corev1.ConfigMap { return &m.configMaps })},
	"Secret":                  {"v1", addStrict(func(m *manifests) *[]*corev1.Secret { return &m.secrets })},
	"PodDisruptionBudget":     {"policy/v1", addStrict(func(m *manifests) *[]*policyv1.PodDisruptionBudget { return &m.pdbs })},
	"Job":                     {"batch/v1", addStrict(func(m *manifests) *[]*batchv1.Job { return &m.jobs })},
	"HorizontalPodAutoscaler": {"autoscaling/v2", addStrict(func(m *manifests) *[]*autoscalingv2.HorizontalPodAutoscaler { return &m.hpas })},
	"NetworkPolicy":           {"networking.k8s.io/v1", addStrict(func(m *manifests) *[]*networkingv1.NetworkPolicy { return &m.policies })},
}

// addStrict returns a decoder that rejects unknown and duplicate fields and appends the object
// to the list field returns.
func addStrict[T any](field func(*manifests) *[]*T) func(*manifests, []byte) error {
	return func(m *manifests, raw []byte) error {
		obj := new(T)
		if err := yaml.UnmarshalStrict(raw, obj); err != nil {
			return err
		}
		*field(m) = append(*field(m), obj)
		return nil
	}
}

// render builds c's kustomization with krusty, as kubectl apply -k does, and decodes every object.
func render(t *testing.T, c manifestCase) *manifests {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join(deployDir, c.dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.components) > 0 {
		// An overlay of the overlay, as an admin would write it, listing the components.
		// Kustomize takes only relative paths to other kustomizations.
		tmp := t.TempDir()
		rel := func(p string) string {
			abs, err := filepath.Abs(p)
			if err == nil {
				abs, err = filepath.Rel(tmp, abs)
			}
			if err != nil {
				t.Fatal(err)
			}
			return filepath.ToSlash(abs)
		}
		k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + rel(dir) + "\ncomponents:\n"
		for _, comp := range c.components {
			k += "  - " + rel(filepath.Join(deployDir, "components", comp)) + "\n"
		}
		if err := os.WriteFile(filepath.Join(tmp, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		dir = tmp
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", c.dir, err)
	}
	m := &manifests{namespaces: map[string]bool{}}
	for _, res := range rm.Resources() {
		raw, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		kind, id := res.GetKind(), res.GetKind()+"/"+res.GetName()
		k, ok := kinds[kind]
		if !ok {
			t.Errorf("%s: kind %s is not one the manifests are expected to hold", id, kind)
			continue
		}
		if res.GetApiVersion() != k.apiVersion {
			t.Errorf("%s: apiVersion %s, want %s", id, res.GetApiVersion(), k.apiVersion)
		}
		if err := k.add(m, raw); err != nil {
			t.Errorf("%s does not decode strictly into its API type: %v", id, err)
		}
		m.namespaces[res.GetNamespace()] = true
	}
	return m
}

func TestManifests(t *testing.T) {
	for _, c := range manifestCases {
		t.Run(c.name, func(t *testing.T) {
			checkManifests(t, c, render(t, c))
		})
	}
}

// TestManifestCasesCoverDeploy fails when an overlay or a component is added without a case.
func TestManifestCasesCoverDeploy(t *testing.T) {
	for _, sub := range []string{"overlays", "components"} {
		entries, err := os.ReadDir(filepath.Join(deployDir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			covered := slices.ContainsFunc(manifestCases, func(c manifestCase) bool {
				return c.dir == sub+"/"+e.Name() || slices.Contains(c.components, e.Name()) && sub == "components"
			})
			if e.IsDir() && !covered {
				t.Errorf("deploy/%s/%s is rendered by no case of manifestCases: add one", sub, e.Name())
			}
		}
	}
}

func checkManifests(t *testing.T, c manifestCase, m *manifests) {
	withHPA := slices.Contains(c.components, "hpa")
	withJob := slices.Contains(c.components, "backfill")
	withPolicy := slices.Contains(c.components, "network-policy")
	counts := []struct {
		kind      string
		got, want int
	}{
		{"Deployment", len(m.deployments), 1},
		{"Service", len(m.services), 2},
		{"PodDisruptionBudget", len(m.pdbs), 1},
		{"Job", len(m.jobs), b2i(withJob)},
		{"HorizontalPodAutoscaler", len(m.hpas), b2i(withHPA)},
		{"NetworkPolicy", len(m.policies), b2i(withPolicy)},
		// The Secret is never part of a kustomization: applying must not overwrite credentials.
		{"Secret", len(m.secrets), 0},
	}
	for _, n := range counts {
		if n.got != n.want {
			t.Errorf("%d objects of kind %s, want %d", n.got, n.kind, n.want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// The old volume's claim is namespaced: everything lives in Mastodon's namespace.
	if len(m.namespaces) != 1 || m.namespaces[""] {
		t.Errorf("namespaces %v: want every object in the one namespace of Mastodon", keys(m.namespaces))
	}

	d := m.deployments[0]
	pod := d.Spec.Template
	ctr := onlyContainer(t, "Deployment", pod.Spec)
	cfg, fallbackDir := podConfig(t, m, "serve", pod.Spec, ctr)
	listenPort, adminPort := port(t, cfg.Listen), port(t, cfg.AdminListen)

	// Replicas and rollout.
	if withHPA {
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment replicas %d with an HPA: an apply would undo the autoscaler's choice; remove it", *d.Spec.Replicas)
		}
		h := m.hpas[0]
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name || h.Spec.ScaleTargetRef.APIVersion != "apps/v1" {
			t.Errorf("HPA scales %+v, want the Deployment %s", h.Spec.ScaleTargetRef, d.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
			t.Errorf("HPA minReplicas %v, want at least 2", h.Spec.MinReplicas)
		}
	} else if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("Deployment replicas %v, want 2", d.Spec.Replicas)
	}
	if s := d.Spec.Strategy; s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil ||
		scaled(t, s.RollingUpdate.MaxUnavailable, 2) != 0 {
		t.Errorf("Deployment strategy %+v, want a rolling update with maxUnavailable 0", s)
	}

	if withPolicy {
		checkNetworkPolicy(t, m.policies[0], pod, ctr, listenPort, adminPort)
	}

	checkPodSecurity(t, "Deployment", pod.Spec, ctr)
	checkOldVolume(t, "Deployment", pod.Spec, ctr, fallbackDir)

	// Placement: spread over nodes, unless a ReadWriteOnce volume ties the pods to one node.
	switch {
	case slices.Contains(c.components, "same-node-as-mastodon"):
		checkSameNode(t, "Deployment", pod.Spec, mastodonWebLabels)
	case slices.Contains(c.components, "single-node"):
		checkSameNode(t, "Deployment", pod.Spec, pod.Labels)
	default:
		// Soft: a one-node cluster must still run both replicas.
		ok := slices.ContainsFunc(pod.Spec.TopologySpreadConstraints, func(c corev1.TopologySpreadConstraint) bool {
			return c.TopologyKey == hostnameKey && c.WhenUnsatisfiable == corev1.ScheduleAnyway &&
				c.LabelSelector != nil && selects(c.LabelSelector.MatchLabels, pod.Labels)
		})
		if !ok || pod.Spec.Affinity != nil {
			t.Errorf("want the replicas spread softly over nodes and no affinity; got %+v, %+v", pod.Spec.TopologySpreadConstraints, pod.Spec.Affinity)
		}
	}

	// The disk tier on an emptyDir larger than cache.disk.max_bytes: entries being written count
	// too, and an emptyDir outgrowing its sizeLimit gets the pod evicted.
	if cfg.Cache.DiskDir == "" {
		t.Error("cache.disk.dir is empty: the disk tier is off")
	} else if v := volumeAt(t, pod.Spec, ctr, cfg.Cache.DiskDir); v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil {
		t.Errorf("cache.disk.dir %s is on volume %s, want an emptyDir with a sizeLimit", cfg.Cache.DiskDir, v.Name)
	} else if limit := v.EmptyDir.SizeLimit.Value(); limit < cfg.Cache.DiskMaxBytes+cfg.Cache.DiskMaxBytes/10 {
		t.Errorf("emptyDir %s sizeLimit %d bytes, want at least 10%% above cache.disk.max_bytes (%d)", v.Name, limit, cfg.Cache.DiskMaxBytes)
	}

	// Memory: the tier plus the runtime's headroom, requested in full.
	res := ctr.Resources
	lim, req := res.Limits[corev1.ResourceMemory], res.Requests[corev1.ResourceMemory]
	if want := cfg.Cache.MemoryMaxBytes + memoryHeadroomMin; lim.Value() < want {
		t.Errorf("memory limit %s (%d bytes), want at least cache.memory.max_bytes + 64MiB = %d", lim.String(), lim.Value(), want)
	}
	if req.Cmp(lim) != 0 {
		t.Errorf("memory request %s, want it equal to the limit %s", req.String(), lim.String())
	}
	if _, ok := res.Requests[corev1.ResourceCPU]; !ok {
		t.Error("no CPU request: the scheduler and the HPA need one")
	}
	// The node must have room for the emptyDirs it may be asked to hold.
	var scratch int64
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil {
			scratch += v.EmptyDir.SizeLimit.Value()
		}
	}
	if es := res.Requests[corev1.ResourceEphemeralStorage]; es.Value() < scratch {
		t.Errorf("ephemeral-storage request %s, want at least the emptyDirs' sizeLimits (%d bytes)", es.String(), scratch)
	}

	// Services without object ACLs: an ACL check would hide every object (MinIO reports all as
	// owner-only) and an ACL header may be refused.
	if noObjectACLs[filepath.Base(c.dir)] && (cfg.S3.RequirePublicRead || cfg.Backfill.Engine.ACL != "") {
		t.Errorf("%s has no object ACLs: want s3.permission and s3.acl \"\"", filepath.Base(c.dir))
	}

	// Graceful shutdown: the preStop pause, then shutdown_grace, within the grace period.
	var pause time.Duration
	if lc := ctr.Lifecycle; lc != nil && lc.PreStop != nil {
		if lc.PreStop.Sleep == nil {
			t.Error("preStop is not a sleep action: the image has no shell")
		} else {
			pause = time.Duration(lc.PreStop.Sleep.Seconds) * time.Second
		}
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= pause+cfg.ShutdownGrace {
		t.Errorf("terminationGracePeriodSeconds %v, want more than the preStop pause (%s) + shutdown_grace (%s)", deref(g), pause, cfg.ShutdownGrace)
	}

	// Ports and probes follow listen and admin_listen.
	if got := containerPort(ctr, "http"); got != listenPort {
		t.Errorf("container port http = %d, want listen's port %d", got, listenPort)
	}
	if got := containerPort(ctr, "admin"); got != adminPort {
		t.Errorf("container port admin = %d, want admin_listen's port %d", got, adminPort)
	}
	checkProbe(t, "readinessProbe", ctr.ReadinessProbe, ctr, "/readyz", adminPort, true)
	// Liveness must not depend on the bucket: /healthz, never /readyz.
	checkProbe(t, "livenessProbe", ctr.LivenessProbe, ctr, "/healthz", adminPort, true)
	checkProbe(t, "startupProbe", ctr.StartupProbe, ctr, "/healthz", adminPort, false)

	// Prometheus scrapes the admin port.
	ann := pod.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != strconv.Itoa(int(adminPort)) {
		t.Errorf("pod annotations %v, want prometheus.io/scrape \"true\", path /metrics, port %d", ann, adminPort)
	}

	// Services: the public one on port 80, the headless one for cluster.peers.
	var public, peers *corev1.Service
	for _, s := range m.services {
		if !selects(s.Spec.Selector, pod.Labels) {
			t.Errorf("Service %s selector %v does not select the Deployment's pods %v", s.Name, s.Spec.Selector, pod.Labels)
		}
		for _, j := range m.jobs {
			if selects(s.Spec.Selector, j.Spec.Template.Labels) {
				t.Errorf("Service %s selects the backfill Job's pods too", s.Name)
			}
		}
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			peers = s
		} else {
			public = s
		}
	}
	if public == nil || peers == nil {
		t.Fatalf("want one public and one headless Service, got %v", m.services)
	}
	if len(public.Spec.Ports) != 1 || public.Spec.Ports[0].Port != 80 || resolvePort(t, ctr, public.Spec.Ports[0].TargetPort) != listenPort {
		t.Errorf("Service %s ports %+v, want 80 to listen's port %d", public.Name, public.Spec.Ports, listenPort)
	}
	if !peers.Spec.PublishNotReadyAddresses {
		t.Errorf("headless Service %s: publishNotReadyAddresses false: purges would miss starting replicas", peers.Name)
	}
	if len(peers.Spec.Ports) != 1 || resolvePort(t, ctr, peers.Spec.Ports[0].TargetPort) != adminPort {
		t.Errorf("headless Service %s ports %+v, want admin_listen's port %d", peers.Name, peers.Spec.Ports, adminPort)
	}
	ns := peers.Namespace
	if names := []string{peers.Name, peers.Name + "." + ns, peers.Name + "." + ns + ".svc", peers.Name + "." + ns + ".svc.cluster.local"}; !slices.Contains(names, cfg.Peers) {
		t.Errorf("cluster.peers %q, want the headless Service's DNS name, one of %v", cfg.Peers, names)
	}

	// Disruptions take one replica at a time.
	p := m.pdbs[0]
	if p.Spec.Selector == nil || !selects(p.Spec.Selector.MatchLabels, pod.Labels) || len(p.Spec.Selector.MatchExpressions) > 0 {
		t.Errorf("PodDisruptionBudget %s selector %v does not select the Deployment's pods", p.Name, p.Spec.Selector)
	}
	if (p.Spec.MaxUnavailable == nil) == (p.Spec.MinAvailable == nil) || p.Spec.MaxUnavailable != nil && scaled(t, p.Spec.MaxUnavailable, 2) != 1 ||
		p.Spec.MinAvailable != nil && scaled(t, p.Spec.MinAvailable, 2) < 1 {
		t.Errorf("PodDisruptionBudget %s: minAvailable %v, maxUnavailable %v; want one replica of two kept", p.Name, p.Spec.MinAvailable, p.Spec.MaxUnavailable)
	}

	if withJob {
		checkBackfillJob(t, m, m.jobs[0], ctr, pod, fallbackDir)
	}
}

// checkBackfillJob checks the one-shot copy against the Deployment it runs beside.
func checkBackfillJob(t *testing.T, m *manifests, j *batchv1.Job, server corev1.Container, serverPod corev1.PodTemplateSpec, fallbackDir string) {
	spec := j.Spec.Template.Spec
	ctr := onlyContainer(t, "Job", spec)
	_, jobFallback := podConfig(t, m, "backfill", spec, ctr)
	if jobFallback != fallbackDir {
		t.Errorf("the Job's fallback.dir %s differs from the Deployment's %s", jobFallback, fallbackDir)
	}
	checkPodSecurity(t, "Job", spec, ctr)
	checkOldVolume(t, "Job", spec, ctr, fallbackDir)
	// Beside a replica, where a ReadWriteOnce volume is attached already.
	checkSameNode(t, "Job", spec, serverPod.Labels)
	if a, b := claimOf(spec), claimOf(serverPod.Spec); a != b {
		t.Errorf("the Job mounts claim %q, the Deployment %q", a, b)
	}
	if !reflect.DeepEqual(ctr.Env, server.Env) {
		t.Errorf("the Job's environment differs from the Deployment's: the configuration would not be checked the same way")
	}
	if ctr.Image != server.Image {
		t.Errorf("the Job runs image %s, the Deployment %s", ctr.Image, server.Image)
	}
	if a, b := configVolume(spec), configVolume(serverPod.Spec); a != b || a == "" {
		t.Errorf("the Job reads ConfigMap %q, the Deployment %q", a, b)
	}
	// Mastodon hides media by making its files 0600 (owner: Mastodon's user); the copy must
	// read them to store them private, where the server, on purpose, cannot.
	if u := spec.SecurityContext.RunAsUser; u == nil || *u != mastodonUID {
		t.Errorf("the Job runs as uid %v, want Mastodon's %d to read hidden (0600) files", deref(u), mastodonUID)
	}
	if rp := spec.RestartPolicy; rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
		t.Errorf("the Job's restartPolicy is %q", rp)
	}
	if j.Spec.BackoffLimit == nil {
		t.Error("the Job has no backoffLimit")
	}
	// Its status page and metrics: --admin-listen, the port named admin and the scrape
	// annotations agree.
	i := slices.Index(ctr.Args, "--admin-listen")
	if i < 0 || i+1 >= len(ctr.Args) {
		t.Fatalf("the Job's args %q have no --admin-listen: its progress would not be visible", ctr.Args)
	}
	_, port, err := net.SplitHostPort(ctr.Args[i+1])
	if err != nil {
		t.Fatalf("the Job's --admin-listen %q: %v", ctr.Args[i+1], err)
	}
	var named string
	for _, p := range ctr.Ports {
		if p.Name == "admin" {
			named = strconv.Itoa(int(p.ContainerPort))
		}
	}
	ann := j.Spec.Template.Annotations
	if named != port || ann["prometheus.io/port"] != port || ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("the Job's --admin-listen port %s, its port named admin %q and its scrape annotations %v disagree", port, named, ann)
	}
}

// podConfig runs the container's command line through fedicache's own command (serve or
// backfill), with the container's environment and the rendered ConfigMap's file in place of its
// mount, and returns the configuration the pod would run with and its fallback.dir. The old
// volume exists only in the pod, so fallback.dir is checked for a folder in a temporary one.
func podConfig(t *testing.T, m *manifests, wantCmd string, spec corev1.PodSpec, ctr corev1.Container) (config.Config, string) {
	t.Helper()
	cmd, rest, err := newRootCmd().Find(ctr.Args)
	if err != nil || cmd.Name() != wantCmd {
		t.Fatalf("container args %q: want the %s command (%v)", ctr.Args, wantCmd, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("container args %q: %v", ctr.Args, err)
	}
	if len(ctr.Command) > 0 {
		t.Errorf("container command %q replaces the image's entrypoint (fedicache)", ctr.Command)
	}
	if !strings.ContainsAny(ctr.Image, ":@") || !strings.Contains(ctr.Image, "/") {
		t.Errorf("image %q: want the registry's name with a tag or digest (kustomization images:)", ctr.Image)
	}
	path, _ := cmd.Flags().GetString("config")
	file := configFile(t, m, spec, ctr, path)

	env := podEnv(t, m, ctr)
	for _, kv := range os.Environ() { // the test's own FEDICACHE_* must not leak in
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "FEDICACHE_") {
			if _, ok := env[k]; !ok {
				t.Setenv(k, "")
			}
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	fallbackDir := env["FEDICACHE_FALLBACK_DIR"]
	if fallbackDir == "" {
		v := viper.New()
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			t.Fatal(err)
		}
		fallbackDir = v.GetString("fallback.dir")
	}
	if !filepath.IsAbs(fallbackDir) {
		t.Fatalf("fallback.dir %q: want the old volume's absolute mount path", fallbackDir)
	}
	t.Setenv("FEDICACHE_FALLBACK_DIR", t.TempDir())
	if err := cmd.Flags().Set("config", file); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFlags(cmd.Flags())
	if err != nil {
		t.Fatalf("fedicache %s refuses the pod's configuration: %v", wantCmd, err)
	}
	return cfg, fallbackDir
}

// configFile checks that path is a file of a ConfigMap mounted read-only in the container and
// writes that file's rendered content to a temporary file, whose name it returns.
func configFile(t *testing.T, m *manifests, spec corev1.PodSpec, ctr corev1.Container, path string) string {
	t.Helper()
	if path == "" {
		t.Fatal("the container is given no --config")
	}
	for _, mnt := range ctr.VolumeMounts {
		if mnt.MountPath != filepath.Dir(path) || mnt.SubPath != "" {
			continue
		}
		v := podVolume(spec, mnt.Name)
		if v == nil || v.ConfigMap == nil {
			t.Fatalf("--config %s: %s is not a ConfigMap volume", path, mnt.MountPath)
		}
		if !mnt.ReadOnly {
			t.Errorf("the configuration's mount %s is writable", mnt.MountPath)
		}
		for _, cm := range m.configMaps {
			if cm.Name != v.ConfigMap.Name {
				continue
			}
			data, ok := cm.Data[filepath.Base(path)]
			if !ok {
				t.Fatalf("--config %s: ConfigMap %s has no key %s", path, cm.Name, filepath.Base(path))
			}
			file := filepath.Join(t.TempDir(), filepath.Base(path))
			if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			return file
		}
		t.Fatalf("--config %s: ConfigMap %s is not among the rendered objects", path, v.ConfigMap.Name)
	}
	t.Fatalf("--config %s: no ConfigMap is mounted at %s", path, filepath.Dir(path))
	return ""
}

// podEnv is the container's environment as the pod would have it with the example Secret filled
// in: plain values, ConfigMap keys, and the Secret's required keys; optional keys left out.
func podEnv(t *testing.T, m *manifests, ctr corev1.Container) map[string]string {
	t.Helper()
	if len(ctr.EnvFrom) > 0 {
		t.Error("envFrom: name each variable, so that a stray key cannot become a setting")
	}
	known := map[string]bool{"FEDICACHE_CONFIG": true}
	for _, key := range config.Keys() {
		known[config.EnvName(key)] = true
	}
	// The credentials of the old bucket the overlays' examples name "old" (fallback.stores).
	oldID, oldSecret := config.OldStoreCredentialVariables("old")
	known[oldID], known[oldSecret] = true, true
	secretKeys := exampleSecretKeys(t)
	env := map[string]string{}
	for _, e := range ctr.Env {
		if strings.HasPrefix(e.Name, "FEDICACHE_") && !known[e.Name] {
			t.Errorf("env %s names no setting (FEDICACHE_ + the key in capitals, _ for .)", e.Name)
		}
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			optional := ref.Optional != nil && *ref.Optional
			if ref.Name != secretName {
				t.Errorf("env %s from Secret %q, want %q", e.Name, ref.Name, secretName)
			}
			if !optional {
				if _, ok := secretKeys[ref.Key]; !ok {
					t.Errorf("env %s needs key %q, which the example Secret lacks", e.Name, ref.Key)
				}
				env[e.Name] = "test-" + ref.Key
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			i := slices.IndexFunc(m.configMaps, func(cm *corev1.ConfigMap) bool { return cm.Name == ref.Name })
			if i < 0 {
				t.Fatalf("env %s from ConfigMap %s, which is not rendered", e.Name, ref.Name)
			}
			env[e.Name] = m.configMaps[i].Data[ref.Key]
		default:
			t.Errorf("env %s: unexpected source %+v", e.Name, e.ValueFrom)
		}
	}
	return env
}

// checkPodSecurity checks the effective security settings of the pod's only container.
func checkPodSecurity(t *testing.T, what string, spec corev1.PodSpec, ctr corev1.Container) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := ctr.SecurityContext
	if sc == nil {
		t.Fatalf("%s: the container has no securityContext", what)
	}
	if v := firstBool(sc.RunAsNonRoot, psc.RunAsNonRoot); !v {
		t.Errorf("%s: runAsNonRoot is not set", what)
	}
	if u := firstInt(sc.RunAsUser, psc.RunAsUser); u != nil && *u == 0 {
		t.Errorf("%s: runs as root", what)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem is not set", what)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", what)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", what)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: capabilities %+v, want drop ALL and add none", what, sc.Capabilities)
	}
	seccomp := psc.SeccompProfile
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile %+v, want RuntimeDefault", what, seccomp)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: the service account token is mounted; fedicache needs no API access", what)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("%s: shares a host namespace", what)
	}
	// With a read-only root, the writable places are emptyDirs, each bounded.
	for _, mnt := range ctr.VolumeMounts {
		if mnt.ReadOnly {
			continue
		}
		if v := podVolume(spec, mnt.Name); v == nil || v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil {
			t.Errorf("%s: %s is writable and not an emptyDir with a sizeLimit", what, mnt.MountPath)
		}
	}
}

// checkSameNode checks that the pod must run on a node running pods labelled want, with a single
// term: the scheduler counts a pod for a node only when it matches every required term, so two
// terms selecting different pods could never be met together.
func checkSameNode(t *testing.T, what string, spec corev1.PodSpec, want map[string]string) {
	t.Helper()
	a := spec.Affinity
	if a == nil || a.PodAffinity == nil || len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("%s: want exactly one required pod affinity term, got %+v", what, a)
		return
	}
	term := a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0]
	if term.TopologyKey != hostnameKey || term.LabelSelector == nil || !reflect.DeepEqual(term.LabelSelector.MatchLabels, want) {
		t.Errorf("%s: pod affinity %+v, want pods labelled %v on the same node", what, term, want)
	}
	if len(spec.TopologySpreadConstraints) > 0 {
		t.Errorf("%s: spread constraints on pods bound to one node", what)
	}
}

// checkOldVolume checks that Mastodon's volume is mounted read-only, at the claim and the
// mount, at fallback.dir.
func checkOldVolume(t *testing.T, what string, spec corev1.PodSpec, ctr corev1.Container, fallbackDir string) {
	t.Helper()
	i := slices.IndexFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == fallbackDir })
	if i < 0 {
		t.Errorf("%s: nothing is mounted at fallback.dir %s", what, fallbackDir)
		return
	}
	mnt := ctr.VolumeMounts[i]
	v := podVolume(spec, mnt.Name)
	if v == nil || v.PersistentVolumeClaim == nil {
		t.Errorf("%s: fallback.dir %s is not a PersistentVolumeClaim", what, fallbackDir)
		return
	}
	if !v.PersistentVolumeClaim.ReadOnly {
		t.Errorf("%s: claim %s is not readOnly", what, v.PersistentVolumeClaim.ClaimName)
	}
	if !mnt.ReadOnly {
		t.Errorf("%s: the mount at %s is not readOnly", what, fallbackDir)
	}
}

// checkProbe checks an HTTP probe on path and the admin port; required says whether it must exist.
func checkProbe(t *testing.T, name string, p *corev1.Probe, ctr corev1.Container, path string, adminPort int32, required bool) {
	t.Helper()
	if p == nil {
		if required {
			t.Errorf("no %s", name)
		}
		return
	}
	if p.HTTPGet == nil {
		t.Errorf("%s is not an HTTP GET", name)
		return
	}
	if p.HTTPGet.Path != path || resolvePort(t, ctr, p.HTTPGet.Port) != adminPort {
		t.Errorf("%s GET %s on port %s, want %s on admin_listen's port %d", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), path, adminPort)
	}
}

func onlyContainer(t *testing.T, what string, spec corev1.PodSpec) corev1.Container {
	t.Helper()
	if len(spec.Containers) != 1 || len(spec.InitContainers) > 0 {
		t.Fatalf("%s: want exactly one container, got %d (and %d init containers)", what, len(spec.Containers), len(spec.InitContainers))
	}
	return spec.Containers[0]
}

func podVolume(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// volumeAt returns the volume mounted at path in the container.
func volumeAt(t *testing.T, spec corev1.PodSpec, ctr corev1.Container, path string) corev1.Volume {
	t.Helper()
	for _, m := range ctr.VolumeMounts {
		if m.MountPath == path {
			if v := podVolume(spec, m.Name); v != nil {
				return *v
			}
		}
	}
	t.Fatalf("nothing is mounted at %s", path)
	return corev1.Volume{}
}

func claimOf(spec corev1.PodSpec) string {
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			return v.PersistentVolumeClaim.ClaimName
		}
	}
	return ""
}

func configVolume(spec corev1.PodSpec) string {
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			return v.ConfigMap.Name
		}
	}
	return ""
}

func containerPort(ctr corev1.Container, name string) int32 {
	for _, p := range ctr.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// resolvePort returns the number a port reference (a number or a container port's name) means.
func resolvePort(t *testing.T, ctr corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	n := containerPort(ctr, p.StrVal)
	if n == 0 {
		t.Errorf("port %q names no container port", p.StrVal)
	}
	return n
}

// port returns the port of a host:port the configuration reader accepted.
func port(t *testing.T, hostPort string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(hostPort)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("%q: no port", hostPort)
	}
	return int32(n)
}

func scaled(t *testing.T, v *intstr.IntOrString, of int) int {
	t.Helper()
	n, err := intstr.GetScaledValueFromIntOrPercent(v, of, true)
	if err != nil {
		t.Errorf("%v: %v", v, err)
	}
	return n
}

// selects reports whether a selector's labels all appear in labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func firstBool(ps ...*bool) bool {
	for _, p := range ps {
		if p != nil {
			return *p
		}
	}
	return false
}

func firstInt(ps ...*int64) *int64 {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

func deref[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// loadExampleSecret decodes deploy/secret.example.yaml strictly.
func loadExampleSecret(t *testing.T) *corev1.Secret {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deployDir, "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := yaml.UnmarshalStrict(raw, &s); err != nil {
		t.Fatalf("secret.example.yaml does not decode strictly into a Secret: %v", err)
	}
	return &s
}

func exampleSecretKeys(t *testing.T) map[string]string {
	t.Helper()
	return loadExampleSecret(t).StringData
}

// TestManifestSecretExample checks that the example Secret holds placeholders only, under the
// name and keys the workloads read, in their namespace.
func TestManifestSecretExample(t *testing.T) {
	s := loadExampleSecret(t)
	if s.APIVersion != "v1" || s.Kind != "Secret" {
		t.Errorf("secret.example.yaml is %s %s, want v1 Secret", s.APIVersion, s.Kind)
	}
	if s.Name != secretName {
		t.Errorf("the example Secret is named %q, want %q", s.Name, secretName)
	}
	if len(s.Data) > 0 {
		t.Error("the example Secret has data: values belong in stringData, as placeholders")
	}
	if len(s.StringData) == 0 {
		t.Fatal("the example Secret has no keys")
	}
	for k, v := range s.StringData {
		if v != placeholder {
			t.Errorf("the example Secret's %s is %q, want the placeholder %s", k, v, placeholder)
		}
	}
	m := render(t, manifestCases[0])
	if !m.namespaces[s.Namespace] {
		t.Errorf("the example Secret's namespace %q is not the manifests' %v", s.Namespace, keys(m.namespaces))
	}
	// Every key it holds is read by the Deployment, and it holds every key the Deployment requires.
	refs := map[string]bool{}
	for _, e := range m.deployments[0].Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			refs[ref.Key] = true
			_, ok := s.StringData[ref.Key]
			if optional := ref.Optional != nil && *ref.Optional; !optional && !ok {
				t.Errorf("the Deployment requires key %s, which the example Secret lacks", ref.Key)
			}
		}
	}
	for k := range s.StringData {
		if !refs[k] {
			t.Errorf("the example Secret's key %s is read by nothing", k)
		}
	}
}

// TestManifestGrafanaDashboard checks that every metric the dashboard queries is one fedicache
// serves, with the labels it filters on, and that deploy/grafana ships the same file.
func TestManifestGrafanaDashboard(t *testing.T) {
	path := filepath.Join(deployDir, "grafana", "fedicache.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	served := servedMetrics(t)
	queries := dashboardQueries(dash)
	if len(queries) < 10 {
		t.Fatalf("%s: %d queries found; the dashboard lost its panels?", path, len(queries))
	}
	used := map[string]bool{}
	for _, q := range queries {
		for name, labels := range promqlMetrics(t, q) {
			used[name] = true
			have, ok := served[name]
			if !ok {
				t.Errorf("query %q: fedicache serves no metric %s", q, name)
				continue
			}
			for _, l := range labels {
				if !have[l] && l != "job" && l != "instance" { // job and instance come from the scrape
					t.Errorf("query %q: metric %s has no label %s", q, name, l)
				}
			}
		}
	}
	for _, want := range []string{"fedicache_requests_total", "fedicache_cache_hits_total", "fedicache_egress_saved_bytes_total",
		"fedicache_bucket_request_duration_seconds_bucket", "fedicache_bucket_errors_total", "fedicache_cache_bytes",
		"fedicache_backfill_copied_files", "fedicache_backfill_remaining_files", "fedicache_backfill_failed_files",
		"fedicache_backfill_conflicts", "fedicache_fallback_answers_total", "fedicache_peer_fill_asks_total"} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}

	// The dashboard's ConfigMap for Grafana's sidecar carries this very file.
	m := render(t, manifestCase{name: "grafana", dir: "grafana"})
	if len(m.configMaps) != 1 || m.configMaps[0].Data["fedicache.json"] != string(raw) || m.configMaps[0].Labels["grafana_dashboard"] != "1" {
		t.Errorf("deploy/grafana does not render one ConfigMap labelled grafana_dashboard with fedicache.json")
	}
}

// servedMetrics returns the names (histogram series included) and label names of the metrics
// fedicache serves on /metrics, registered as serve registers them, with every optional part
// (peers, Cloudflare, background backfill, both cache tiers) turned on.
func servedMetrics(t *testing.T) map[string]map[string]bool {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	cfg := config.Config{
		AdminListen: ":9090",
		Peers:       "fedicache-peers",
		AdminToken:  "token",
		Cloudflare:  cluster.CloudflareConfig{ZoneID: "zone", APIToken: "token"},
		Cache: config.CacheConfig{
			MemoryMaxBytes: 1 << 20, MemoryMaxObjectBytes: 1 << 10,
			DiskDir: t.TempDir(), DiskMaxBytes: 1 << 20,
		},
	}
	reg := newRegistry()
	bucket := newBucketMetrics(reg)
	newPeers(cfg, reg)
	newCloudflare(cfg, reg, log)
	copies{{name: "volume", p: backfill.NewProgress()}}.register(reg)
	registerStateMetrics(reg, state.New(state.Config{}))
	layered, closeTiers, err := newCache(origin.Fallback(noOrigin{}, nil), cfg, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeTiers)
	m := proxy.NewMetrics(reg)
	m.KnowStores([]string{origin.VolumeStoreName, "wasabi"})
	registerCacheMetrics(reg, layered.Stats, m.HitBytes)
	owners, err := cluster.NewOwners(cluster.OwnersConfig{Peers: cfg.PeersConfig()})
	if err != nil {
		t.Fatal(err)
	}
	registerClusterMetrics(reg, owners, cluster.NewPeerFill(cluster.PeerFillConfig{Owners: owners}), cluster.NewPeerHandler(cluster.PeerServeConfig{}))
	proxy.New(layered, cfg.Proxy, m)
	// Labelled series appear once they have a value: one failed bucket request gives the
	// bucket's latency and error families theirs.
	bucket.observe("GetObject", time.Millisecond, errors.New("failed"))

	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, f := range fams {
		labels := map[string]bool{}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		name := f.GetName()
		switch f.GetType().String() {
		case "HISTOGRAM":
			out[name+"_bucket"] = withLabel(labels, "le")
			out[name+"_sum"], out[name+"_count"] = labels, labels
		case "SUMMARY":
			out[name] = withLabel(labels, "quantile")
			out[name+"_sum"], out[name+"_count"] = labels, labels
		default:
			out[name] = labels
		}
	}
	return out
}

func withLabel(labels map[string]bool, l string) map[string]bool {
	out := map[string]bool{l: true}
	for k := range labels {
		out[k] = true
	}
	return out
}

// noOrigin is an origin with nothing in it, for registering the cache's metrics.
type noOrigin struct{}

func (noOrigin) Stat(context.Context, string) (origin.Meta, error) {
	return origin.Meta{}, origin.ErrNotFound
}

func (noOrigin) Get(context.Context, string, *origin.Range) (io.ReadCloser, origin.Meta, error) {
	return nil, origin.Meta{}, origin.ErrNotFound
}

// dashboardQueries returns every PromQL expression of the dashboard: the panels' targets and
// the template variables' queries.
func dashboardQueries(v any) []string {
	var out []string
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(k, e)
			}
		case []any:
			for _, e := range x {
				walk(key, e)
			}
		case string:
			if key == "expr" || key == "query" && strings.Contains(x, "(") {
				out = append(out, x)
			}
		}
	}
	walk("", v)
	return out
}

var (
	promqlString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promqlRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlVariable = regexp.MustCompile(`\$\w+`)
	promqlMatchers = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}`)
	promqlLabel    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlLabelArg = regexp.MustCompile(`label_values\(([^,()]*),[^)]*\)`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	// promqlWords are PromQL's (and Grafana's label_values) functions and keywords: everything
	// else that looks like a name is a metric.
	promqlWords = map[string]bool{"sum": true, "max": true, "min": true, "avg": true, "count": true, "rate": true,
		"irate": true, "increase": true, "deriv": true, "histogram_quantile": true, "label_values": true, "topk": true,
		"bottomk": true, "clamp_min": true, "clamp_max": true, "abs": true, "bool": true, "and": true, "or": true,
		"unless": true, "offset": true, "vector": true, "scalar": true, "time": true}
)

// promqlMetrics returns the metric names a PromQL expression reads, each with the label names
// it filters on.
func promqlMetrics(t *testing.T, expr string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	e := promqlVariable.ReplaceAllString(expr, "x")
	e = promqlLabelArg.ReplaceAllString(e, "label_values($1)")
	for _, m := range promqlMatchers.FindAllStringSubmatch(e, -1) {
		if m[1] == "" {
			t.Errorf("query %q: a selector without a metric name", expr)
			continue
		}
		for _, l := range promqlLabel.FindAllStringSubmatch(promqlString.ReplaceAllString(m[2], `""`), -1) {
			out[m[1]] = append(out[m[1]], l[1])
		}
	}
	e = promqlMatchers.ReplaceAllString(e, "$1")
	e = promqlRange.ReplaceAllString(e, "")
	e = promqlGrouping.ReplaceAllString(e, "")
	for _, m := range promqlIdent.FindAllStringSubmatch(e, -1) {
		name := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(m[0]), "("))
		if m[1] != "" || promqlWords[name] {
			if m[1] != "" && !promqlWords[name] {
				t.Errorf("query %q: unknown function %s", expr, name)
			}
			continue
		}
		if _, ok := out[name]; !ok {
			out[name] = nil
		}
	}
	return out
}

// Checks that the helpers above see what they should: a query's metrics and labels.
func TestManifestPromQLParsing(t *testing.T) {
	got := promqlMetrics(t, `sum by (tier) (rate(a_total{job=~"$job", tier="disk"}[$__rate_interval])) / ignoring (tier) group_left () `+
		`(sum(rate(b_total[5m])) + histogram_quantile(0.99, sum by (le) (rate(c_bucket{instance=~"$instance"}[5m]))))`)
	want := map[string][]string{"a_total": {"job", "tier"}, "b_total": nil, "c_bucket": {"instance"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("promqlMetrics = %v, want %v", got, want)
	}
	if got := promqlMetrics(t, `label_values(fedicache_requests_total{job=~"$job"}, instance)`); !reflect.DeepEqual(got, map[string][]string{"fedicache_requests_total": {"job"}}) {
		t.Errorf("label_values: %v", got)
	}
}

// checkNetworkPolicy checks the NetworkPolicy of the network-policy component: it selects the
// Deployment's pods, lets anyone reach the public port, and lets only those pods (the peers:
// peer fill, purges) and one monitoring namespace reach the admin port.
func checkNetworkPolicy(t *testing.T, np *networkingv1.NetworkPolicy, pod corev1.PodTemplateSpec, ctr corev1.Container, listenPort, adminPort int32) {
	t.Helper()
	if !reflect.DeepEqual(np.Spec.PodSelector.MatchLabels, pod.Labels) {
		t.Errorf("NetworkPolicy selects %v, want the Deployment's pods %v", np.Spec.PodSelector.MatchLabels, pod.Labels)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("NetworkPolicy types %v, want Ingress only (the pods reach the bucket and DNS freely)", np.Spec.PolicyTypes)
	}
	// portOf resolves a policy port (a name of the container's ports, or a number).
	portOf := func(p networkingv1.NetworkPolicyPort) int32 {
		if p.Port == nil {
			return -1
		}
		if p.Port.Type == intstr.Int {
			return p.Port.IntVal
		}
		for _, cp := range ctr.Ports {
			if cp.Name == p.Port.StrVal {
				return cp.ContainerPort
			}
		}
		t.Errorf("NetworkPolicy names port %q, which the container does not have", p.Port.StrVal)
		return -1
	}
	var public, admin bool
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			switch portOf(p) {
			case listenPort:
				public = len(rule.From) == 0
			case adminPort:
				admin = true
				for _, from := range rule.From {
					peers := from.PodSelector != nil && from.NamespaceSelector == nil && reflect.DeepEqual(from.PodSelector.MatchLabels, pod.Labels)
					monitoring := from.NamespaceSelector != nil && from.PodSelector == nil && len(from.NamespaceSelector.MatchLabels) == 1
					if !peers && !monitoring || from.IPBlock != nil {
						t.Errorf("NetworkPolicy lets %+v reach the admin port: want the replicas and one monitoring namespace only", from)
					}
				}
				if len(rule.From) == 0 {
					t.Error("NetworkPolicy lets anyone reach the admin port")
				}
			default:
				t.Errorf("NetworkPolicy opens port %v, neither listen nor admin_listen", p.Port)
			}
		}
	}
	if !public || !admin {
		t.Errorf("NetworkPolicy: public port open to all %v, admin port to the peers %v; want both", public, admin)
	}
}
