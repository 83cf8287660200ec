package main

// The Helm chart in deploy/helm/fedicache is rendered here as `helm install` renders it (Helm's
// own library: the values files and --set merged as the CLI merges them, the schema, a
// client-side dry run), every object is decoded strictly into its Kubernetes API type, and each
// render is checked twice: by the checks the Kustomize manifests pass (manifests_test.go), and
// object for object against the Kustomize render of the same choice (overlay and components).

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fedicache/fedicache/cmd/fedicache/config"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/getter"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// helmChartDir is the chart, seen from this package's folder.
var helmChartDir = filepath.Join(deployDir, "helm", "fedicache")

const (
	// helmRelease and helmNamespace are those of the README's install command: the release named
	// fedicache names its objects as the Kustomize base does.
	helmRelease   = "fedicache"
	helmNamespace = "mastodon"
	// helmKubeVersion is the cluster version the renders assume (the chart needs 1.30 or later).
	helmKubeVersion = "v1.33.0"
	instanceLabel   = "app.kubernetes.io/instance"
)

// helmCase is one install an admin may run: values files of the chart (after its values.yaml,
// as -f) and --set values, with the Kustomize render that must come out the same.
type helmCase struct {
	name  string
	files []string // under the chart's folder
	set   []string
	kust  manifestCase
}

var helmCases = []helmCase{
	{name: "default", kust: manifestCase{name: "base", dir: "."}},
	{name: "aws-s3", files: []string{"values-aws-s3.yaml"}, kust: manifestCase{name: "aws-s3", dir: "overlays/aws-s3"}},
	{name: "cloudflare-r2", files: []string{"values-cloudflare-r2.yaml"}, kust: manifestCase{name: "cloudflare-r2", dir: "overlays/cloudflare-r2"}},
	{name: "idrive-e2", files: []string{"values-idrive-e2.yaml"}, kust: manifestCase{name: "idrive-e2", dir: "overlays/idrive-e2"}},
	{name: "minio", files: []string{"values-minio.yaml"}, kust: manifestCase{name: "minio", dir: "overlays/minio"}},
	{
		name: "default+backfill+hpa+network-policy",
		set:  []string{"backfillJob.enabled=true", "autoscaling.enabled=true", "networkPolicy.enabled=true"},
		kust: manifestCase{dir: ".", components: []string{"backfill", "hpa", "network-policy"}},
	},
	{
		name: "idrive-e2+backfill+same-node-as-mastodon", files: []string{"values-idrive-e2.yaml"},
		set:  []string{"backfillJob.enabled=true", "placement.mode=same-node-as-mastodon"},
		kust: manifestCase{dir: "overlays/idrive-e2", components: []string{"backfill", "same-node-as-mastodon"}},
	},
	{
		name: "cloudflare-r2+single-node+hpa", files: []string{"values-cloudflare-r2.yaml"},
		set:  []string{"placement.mode=single-node", "autoscaling.enabled=true"},
		kust: manifestCase{dir: "overlays/cloudflare-r2", components: []string{"single-node", "hpa"}},
	},
	{
		name: "minio+backfill", files: []string{"values-minio.yaml"}, set: []string{"backfillJob.enabled=true"},
		kust: manifestCase{dir: "overlays/minio", components: []string{"backfill"}},
	},
	{
		name: "aws-s3+hpa+network-policy", files: []string{"values-aws-s3.yaml"},
		set:  []string{"autoscaling.enabled=true", "networkPolicy.enabled=true"},
		kust: manifestCase{dir: "overlays/aws-s3", components: []string{"hpa", "network-policy"}},
	},
}

// helmRender is one install's rendered objects, decoded, and its NOTES.txt.
type helmRender struct {
	m       *manifests
	objects []metav1.ObjectMeta
	notes   string
}

// helmValues merges the chart's values files and --set values as the helm CLI does.
func helmValues(t *testing.T, files, set []string) map[string]any {
	t.Helper()
	opts := values.Options{Values: set}
	for _, f := range files {
		if !filepath.IsAbs(f) {
			f = filepath.Join(helmChartDir, f)
		}
		opts.ValueFiles = append(opts.ValueFiles, f)
	}
	vals, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		t.Fatalf("values %v --set %v: %v", files, set, err)
	}
	return vals
}

// renderChart renders the chart as `helm install fedicache deploy/helm/fedicache -n mastodon`
// with the given values, client-side only (no cluster), and returns Helm's error as is.
func renderChart(t *testing.T, vals map[string]any) (*release.Release, error) {
	t.Helper()
	chrt, err := loader.Load(helmChartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	cfg := action.NewConfiguration()
	cfg.SetLogger(slog.DiscardHandler)
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName, install.Namespace = helmRelease, helmNamespace
	install.Replace = true
	kv, err := common.ParseKubeVersion(helmKubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	install.KubeVersion = kv
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		t.Fatalf("install returned a %T", rel)
	}
	return r, nil
}

// helmRenderCase renders c and decodes every object strictly, as render does the Kustomize ones.
func helmRenderCase(t *testing.T, files, set []string) helmRender {
	t.Helper()
	rel, err := renderChart(t, helmValues(t, files, set))
	if err != nil {
		t.Fatalf("helm install --dry-run -f %v --set %v: %v", files, set, err)
	}
	if len(rel.Hooks) > 0 {
		t.Errorf("the chart has %d hooks: a hook would make helm install wait for it (the backfill may take hours)", len(rel.Hooks))
	}
	out := helmRender{m: &manifests{namespaces: map[string]bool{}}, notes: rel.Info.Notes}
	for name, doc := range releaseutil.SplitManifests(rel.Manifest) {
		var head struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, doc)
		}
		if head.Kind == "" {
			continue // a template that rendered nothing
		}
		id := head.Kind + "/" + head.Metadata.Name
		k, ok := kinds[head.Kind]
		if !ok {
			t.Errorf("%s: kind %s is not one the chart is expected to hold", id, head.Kind)
			continue
		}
		if head.APIVersion != k.apiVersion {
			t.Errorf("%s: apiVersion %s, want %s", id, head.APIVersion, k.apiVersion)
		}
		if err := k.add(out.m, []byte(doc)); err != nil {
			t.Errorf("%s does not decode strictly into its API type: %v", id, err)
		}
		out.m.namespaces[head.Metadata.Namespace] = true
		out.objects = append(out.objects, head.Metadata)
	}
	return out
}

// TestHelmChart renders every case and checks it as the Kustomize manifests are checked, then
// against the Kustomize render of the same overlay and components.
func TestHelmChart(t *testing.T) {
	for _, c := range helmCases {
		t.Run(c.name, func(t *testing.T) {
			h := helmRenderCase(t, c.files, c.set)
			for _, o := range h.objects {
				if o.Namespace != helmNamespace {
					t.Errorf("%s is in namespace %q, want the release's %q (the old volume's claim is there)", o.Name, o.Namespace, helmNamespace)
				}
				for k, v := range o.Annotations {
					// Helm keeps a resource with this annotation on uninstall and rollback:
					// nothing the chart renders holds media, and the old volume is not the chart's.
					if strings.HasPrefix(k, "helm.sh/") {
						t.Errorf("%s carries %s: %s", o.Name, k, v)
					}
				}
				if o.Labels[instanceLabel] != helmRelease {
					t.Errorf("%s: label %s %q, want the release %q", o.Name, instanceLabel, o.Labels[instanceLabel], helmRelease)
				}
			}
			kc := c.kust
			checkManifests(t, kc, h.m)
			sameAsKustomize(t, h.m, render(t, kc))
			checkNotes(t, h.notes)
		})
	}
}

// TestHelmCasesCoverProviders fails when an overlay has no values file or no case, or a values
// file no overlay.
func TestHelmCasesCoverProviders(t *testing.T) {
	overlays, err := os.ReadDir(filepath.Join(deployDir, "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, o := range overlays {
		if !o.IsDir() {
			continue
		}
		want = append(want, "values-"+o.Name()+".yaml")
		if !slices.ContainsFunc(helmCases, func(c helmCase) bool {
			return c.name == o.Name() && slices.Equal(c.files, []string{"values-" + o.Name() + ".yaml"})
		}) {
			t.Errorf("deploy/overlays/%s has no helm case rendering values-%s.yaml alone: add one to helmCases", o.Name(), o.Name())
		}
	}
	got, err := filepath.Glob(filepath.Join(helmChartDir, "values-*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i] = filepath.Base(got[i])
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the chart's provider values files are %v, want one per overlay: %v", got, want)
	}
}

// sameAsKustomize compares the specs of h's objects with k's, kind by kind. The chart adds the
// label app.kubernetes.io/instance to its selectors (two releases in one namespace never select
// each other's pods) and a checksum of the configuration to the pods (Kustomize puts a hash in
// the ConfigMap's name instead); both are set aside, the rest must be identical.
func sameAsKustomize(t *testing.T, h, k *manifests) {
	t.Helper()
	hd, kd := h.deployments[0].DeepCopy(), k.deployments[0].DeepCopy()
	normalizePod(&hd.Spec.Template)
	normalizePod(&kd.Spec.Template)
	if hd.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("the Deployment's pods carry no checksum/config: a changed configuration would not roll them")
	}
	delete(hd.Spec.Template.Annotations, "checksum/config")
	dropInstance(hd.Spec.Selector)
	sameYAML(t, "Deployment spec", hd.Spec, kd.Spec)

	// The configuration fedicache reads, through its own loader: every setting the same.
	hc, _ := podConfig(t, h, "serve", h.deployments[0].Spec.Template.Spec, h.deployments[0].Spec.Template.Spec.Containers[0])
	kc, _ := podConfig(t, k, "serve", k.deployments[0].Spec.Template.Spec, k.deployments[0].Spec.Template.Spec.Containers[0])
	hc.FallbackDir, kc.FallbackDir = "", "" // a temporary folder each (podConfig)
	if !reflect.DeepEqual(hc, kc) {
		diff := fieldDiff("Config", reflect.ValueOf(hc), reflect.ValueOf(kc))
		for _, d := range diff {
			t.Errorf("the configuration fedicache reads differs from Kustomize's: %s", d)
		}
		if len(diff) == 0 {
			t.Errorf("the configuration fedicache reads differs from Kustomize's (in an unexported field):\nhelm      %+v\nkustomize %+v", hc, kc)
		}
	}

	for _, headless := range []bool{false, true} {
		hs, ks := serviceOf(t, h, headless), serviceOf(t, k, headless)
		for _, s := range []*corev1.Service{hs, ks} {
			delete(s.Spec.Selector, instanceLabel)
			if s.Spec.Type == "" {
				s.Spec.Type = corev1.ServiceTypeClusterIP
			}
		}
		sameYAML(t, "Service "+hs.Name+" spec", hs.Spec, ks.Spec)
	}

	hp, kp := h.pdbs[0].DeepCopy(), k.pdbs[0]
	dropInstance(hp.Spec.Selector)
	sameYAML(t, "PodDisruptionBudget spec", hp.Spec, kp.Spec)

	if len(h.hpas) != len(k.hpas) || len(h.policies) != len(k.policies) || len(h.jobs) != len(k.jobs) {
		t.Fatalf("helm renders %d HPAs, %d NetworkPolicies, %d Jobs; Kustomize %d, %d, %d",
			len(h.hpas), len(h.policies), len(h.jobs), len(k.hpas), len(k.policies), len(k.jobs))
	}
	if len(h.hpas) == 1 {
		sameYAML(t, "HorizontalPodAutoscaler spec", h.hpas[0].Spec, k.hpas[0].Spec)
	}
	if len(h.policies) == 1 {
		hn := h.policies[0].DeepCopy()
		dropInstance(&hn.Spec.PodSelector)
		for _, rule := range hn.Spec.Ingress {
			for _, from := range rule.From {
				dropInstance(from.PodSelector)
			}
		}
		sameYAML(t, "NetworkPolicy spec", hn.Spec, k.policies[0].Spec)
	}
	if len(h.jobs) == 1 {
		hj, kj := h.jobs[0].DeepCopy(), k.jobs[0].DeepCopy()
		normalizePod(&hj.Spec.Template)
		normalizePod(&kj.Spec.Template)
		sameYAML(t, "Job spec", hj.Spec, kj.Spec)
		if !regexp.MustCompile(`^fedicache-backfill-[0-9a-f]{8}$`).MatchString(h.jobs[0].Name) {
			t.Errorf("Job %s: want fedicache-backfill-<hash of its pod and configuration>", h.jobs[0].Name)
		}
	}
}

// fieldDiff returns the fields of two values of one type that differ, by path: Helm's value,
// then Kustomize's.
func fieldDiff(path string, h, k reflect.Value) []string {
	switch h.Kind() {
	case reflect.Struct:
		var out []string
		for i := range h.NumField() {
			out = append(out, fieldDiff(path+"."+h.Type().Field(i).Name, h.Field(i), k.Field(i))...)
		}
		return out
	case reflect.Func:
		if h.IsNil() != k.IsNil() {
			return []string{path + ": set on one side only"}
		}
		return nil
	}
	if h.CanInterface() && !reflect.DeepEqual(h.Interface(), k.Interface()) {
		return []string{fmt.Sprintf("%s: %#v, Kustomize %#v", path, h.Interface(), k.Interface())}
	}
	return nil
}

// normalizePod sets aside what differs by design: the instance label, the ConfigMap's name.
func normalizePod(p *corev1.PodTemplateSpec) {
	delete(p.Labels, instanceLabel)
	for i := range p.Spec.Volumes {
		if cm := p.Spec.Volumes[i].ConfigMap; cm != nil {
			cm.Name = "(the configuration)"
		}
	}
	if a := p.Spec.Affinity; a != nil && a.PodAffinity != nil {
		for i := range a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			dropInstance(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[i].LabelSelector)
		}
	}
	for i := range p.Spec.TopologySpreadConstraints {
		dropInstance(p.Spec.TopologySpreadConstraints[i].LabelSelector)
	}
}

func dropInstance(s *metav1.LabelSelector) {
	if s != nil {
		delete(s.MatchLabels, instanceLabel)
	}
}

func serviceOf(t *testing.T, m *manifests, headless bool) *corev1.Service {
	t.Helper()
	for _, s := range m.services {
		if (s.Spec.ClusterIP == corev1.ClusterIPNone) == headless {
			return s.DeepCopy()
		}
	}
	t.Fatalf("no Service with headless %v", headless)
	return nil
}

// sameYAML fails with a line diff when got (Helm's) and want (Kustomize's) differ.
func sameYAML(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("%s differs from Kustomize's (- Kustomize, + Helm):\n%s", what, lineDiff(string(w), string(g)))
	}
}

// lineDiff is a longest-common-subsequence diff of two short texts, changed lines only.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&out, "+ %s\n", y[j])
			j++
		default:
			fmt.Fprintf(&out, "- %s\n", x[i])
			i++
		}
	}
	return out.String()
}

// checkNotes checks that NOTES.txt tells the admin what to set in Mastodon, where the status
// page is and about the cache buster.
func checkNotes(t *testing.T, notes string) {
	t.Helper()
	for _, want := range []string{
		"S3_ALIAS_HOST", "alias_host:", "aliasHost", // both Mastodon charts
		"cacheBuster:", "cache-buster-secret", "EXTRA_MEDIA_HOSTS",
		"port-forward deploy/" + helmRelease + " 9090", "http://localhost:9090/",
		"Service " + helmRelease + " port 80",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES.txt does not say %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "<no value>") || strings.Contains(notes, "%!") {
		t.Errorf("NOTES.txt renders a missing value:\n%s", notes)
	}
}

// TestHelmNotesCacheBuster: NOTES.txt says when the cache buster is off, and which header and
// method Mastodon must send when it is on.
func TestHelmNotesCacheBuster(t *testing.T) {
	off := helmRenderCase(t, nil, nil).notes
	if !strings.Contains(off, "It is OFF") {
		t.Errorf("with cache_buster.secret_header empty, NOTES.txt does not say the cache buster is off:\n%s", off)
	}
	on := helmRenderCase(t, nil, []string{"config.cache_buster.secret_header=X-Cache-Buster-Secret", "config.cache_buster.method=PURGE"}).notes
	for _, want := range []string{"header X-Cache-Buster-Secret (method PURGE)", "httpMethod: PURGE", "authHeader: X-Cache-Buster-Secret"} {
		if !strings.Contains(on, want) {
			t.Errorf("NOTES.txt does not say %q:\n%s", want, on)
		}
	}
}

// TestHelmBackfillVerify: backfillJob.verify runs the verification, which copies nothing and so
// serves no progress page, and its Job has another name than the copy's.
func TestHelmBackfillVerify(t *testing.T) {
	copyJob := helmRenderCase(t, nil, []string{"backfillJob.enabled=true"}).m.jobs[0]
	h := helmRenderCase(t, nil, []string{"backfillJob.enabled=true", "backfillJob.verify=hash"})
	j := h.m.jobs[0]
	ctr := onlyContainer(t, "Job", j.Spec.Template.Spec)
	if !slices.Contains(ctr.Args, "--verify=hash") || slices.Contains(ctr.Args, "--admin-listen") || len(ctr.Ports) > 0 {
		t.Errorf("verification Job args %q, ports %v: want --verify=hash and no --admin-listen", ctr.Args, ctr.Ports)
	}
	cfg, _ := podConfig(t, h.m, "backfill", j.Spec.Template.Spec, ctr)
	if cfg.S3.Bucket == "" {
		t.Error("the verification Job's configuration has no bucket")
	}
	if j.Name == copyJob.Name {
		t.Errorf("the verification Job has the copy's name %s: an upgrade would try to change an immutable pod", j.Name)
	}
	if !strings.Contains(h.notes, "job/"+j.Name) {
		t.Errorf("NOTES.txt does not name the Job %s:\n%s", j.Name, h.notes)
	}
	// A change of the configuration is a new run too; the same values, the same Job.
	again := helmRenderCase(t, nil, []string{"backfillJob.enabled=true"}).m.jobs[0]
	changed := helmRenderCase(t, nil, []string{"backfillJob.enabled=true", "config.s3.bucket=other"}).m.jobs[0]
	if again.Name != copyJob.Name || changed.Name == copyJob.Name {
		t.Errorf("Job names %s, %s (same values), %s (another bucket): want the same, then another", copyJob.Name, again.Name, changed.Name)
	}
}

// TestHelmWithoutOldVolume: once the volume is retired (oldVolume.existingClaim and
// config.fallback.dir empty), nothing mounts a claim and fedicache runs without a fallback.
func TestHelmWithoutOldVolume(t *testing.T) {
	h := helmRenderCase(t, nil, []string{"oldVolume.existingClaim=", "config.fallback.dir=", "placement.mode=single-node", "backfillJob.enabled=true", "config.cache.disk.dir="})
	for what, spec := range map[string]corev1.PodSpec{"Deployment": h.m.deployments[0].Spec.Template.Spec, "Job": h.m.jobs[0].Spec.Template.Spec} {
		if c := claimOf(spec); c != "" {
			t.Errorf("%s mounts claim %s", what, c)
		}
		if spec.Affinity != nil {
			t.Errorf("%s is tied to a node without a volume: %+v", what, spec.Affinity)
		}
	}
	d := h.m.deployments[0].Spec.Template.Spec
	if podVolume(d, "cache") != nil {
		t.Error("config.cache.disk.dir is empty, yet the cache's emptyDir is there")
	}
	// fedicache runs with that configuration (podConfig wants a volume, so read it here).
	for k, v := range podEnv(t, h.m, d.Containers[0]) {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(configFile(t, h.m, d, d.Containers[0], "/etc/fedicache/fedicache.yaml"), nil)
	if err != nil {
		t.Fatalf("fedicache refuses the configuration without the old volume: %v", err)
	}
	if cfg.FallbackDir != "" || cfg.Cache.DiskDir != "" {
		t.Errorf("fallback.dir %q, cache.disk.dir %q: want both empty", cfg.FallbackDir, cfg.Cache.DiskDir)
	}
}

// TestHelmFollowsConfig: the ports, probes, mounts and the peers' Service follow the
// configuration's listen, admin_listen, fallback.dir and cache.disk.dir, so the pods agree with
// fedicache whatever the admin sets (manifests_test.go's checks, on a changed configuration),
// and a release of another name finds its own peers.
func TestHelmFollowsConfig(t *testing.T) {
	set := []string{"config.listen=:8081", "config.admin_listen=127.0.0.1:9191", "config.fallback.dir=/srv/system",
		"config.cache.disk.dir=/var/cache/media", "backfillJob.enabled=true", "networkPolicy.enabled=true"}
	h := helmRenderCase(t, nil, set)
	checkManifests(t, manifestCase{name: "changed", dir: ".", components: []string{"backfill", "network-policy"}}, h.m)

	// Another name: every object's name changes with it, cluster.peers too.
	rel, err := renderChart(t, helmValues(t, nil, []string{"fullnameOverride=media"}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rel.Manifest, "peers: media-peers") || !strings.Contains(rel.Manifest, "name: media-peers") {
		t.Errorf("with fullnameOverride=media, cluster.peers is not the headless Service media-peers:\n%s", rel.Manifest)
	}
}

// TestHelmExtras: extraEnv, extraVolumes and extraVolumeMounts reach the server's container and
// the backfill Job's alike (a CA bundle for AWS_CA_BUNDLE serves both), after the chart's own.
func TestHelmExtras(t *testing.T) {
	h := helmRenderCase(t, nil, []string{"backfillJob.enabled=true",
		"extraEnv[0].name=AWS_CA_BUNDLE", "extraEnv[0].value=/etc/ca/ca.pem",
		"extraVolumes[0].name=ca", "extraVolumes[0].configMap.name=corporate-ca",
		"extraVolumeMounts[0].name=ca", "extraVolumeMounts[0].mountPath=/etc/ca", "extraVolumeMounts[0].readOnly=true"})
	for what, spec := range map[string]corev1.PodSpec{"Deployment": h.m.deployments[0].Spec.Template.Spec, "Job": h.m.jobs[0].Spec.Template.Spec} {
		ctr := spec.Containers[0]
		if e := ctr.Env[len(ctr.Env)-1]; e.Name != "AWS_CA_BUNDLE" || e.Value != "/etc/ca/ca.pem" {
			t.Errorf("%s: last variable %+v, want AWS_CA_BUNDLE", what, e)
		}
		if m := ctr.VolumeMounts[len(ctr.VolumeMounts)-1]; m.Name != "ca" || m.MountPath != "/etc/ca" || !m.ReadOnly {
			t.Errorf("%s: last mount %+v, want ca at /etc/ca", what, m)
		}
		if v := podVolume(spec, "ca"); v == nil || v.ConfigMap == nil || v.ConfigMap.Name != "corporate-ca" {
			t.Errorf("%s: volume ca %+v, want the ConfigMap corporate-ca", what, v)
		}
		checkPodSecurity(t, what, spec, ctr)
	}
}

// TestHelmRefuses: values that would give pods fedicache cannot run with, or credentials in the
// ConfigMap, stop the install with an error naming the value and the fix.
func TestHelmRefuses(t *testing.T) {
	for _, c := range []struct {
		set  []string
		want []string
	}{
		{[]string{"existingSecret="}, []string{"existingSecret"}},
		{[]string{"existingSecrt=fedicache"}, []string{"existingSecrt"}},
		{[]string{"config.s3.secret_access_key=abc"}, []string{"config.s3.secret_access_key", "s3-secret-access-key", "Secret fedicache"}},
		{[]string{"config.s3.access_key_id=AK"}, []string{"config.s3.access_key_id", "s3-access-key-id"}},
		{[]string{"config.admin.token=t"}, []string{"config.admin.token", "admin-token"}},
		{[]string{"config.cache_buster.secret=s"}, []string{"config.cache_buster.secret", "cache-buster-secret"}},
		{[]string{"config.cloudflare.api_token=t"}, []string{"config.cloudflare.api_token", "cloudflare-api-token"}},
		{[]string{"config.fallback.stores[0].name=old", "config.fallback.stores[0].secret_access_key=s"}, []string{"config.fallback.stores[0]", "old-s3-secret-access-key"}},
		{[]string{"oldVolume.existingClaim="}, []string{"config.fallback.dir is /mnt/mastodon-system", "oldVolume.existingClaim: mastodon-system", "config.fallback.dir: \"\""}},
		{[]string{"config.fallback.dir="}, []string{"oldVolume.existingClaim is mastodon-system", "config.fallback.dir: /mnt/mastodon-system", "oldVolume.existingClaim: \"\""}},
		{[]string{"config.fallback.dir=system"}, []string{"config.fallback.dir", "absolute"}},
		{[]string{"config.cache.disk.dir=/mnt/mastodon-system"}, []string{"config.cache.disk.dir", "config.fallback.dir"}},
		{[]string{"config.cache.disk.dir=/tmp"}, []string{"config.cache.disk.dir", "/tmp"}},
		{[]string{"config.listen=8080"}, []string{"config.listen", "host:port"}},
		{[]string{"config.admin_listen=:8080"}, []string{"config.listen", "config.admin_listen", "same port"}},
		{[]string{"placement.mode=same-node"}, []string{"placement", "mode"}},
		{[]string{"backfillJob.enabled=true", "backfillJob.verify=all"}, []string{"backfillJob", "verify"}},
		{[]string{"autoscaling.enabled=true", "autoscaling.maxReplicas=2", "autoscaling.minReplicas=3"}, []string{"autoscaling.maxReplicas", "autoscaling.minReplicas"}},
	} {
		t.Run(strings.Join(c.set, ","), func(t *testing.T) {
			_, err := renderChart(t, helmValues(t, nil, c.set))
			if err == nil {
				t.Fatal("the install is accepted")
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q: %v", w, err)
				}
			}
		})
	}
}

// TestHelmLint runs Helm's linter (helm lint) on the chart with its defaults and with each
// provider's values: no warning, no error.
func TestHelmLint(t *testing.T) {
	kv, err := common.ParseKubeVersion(helmKubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range helmCases {
		if len(c.set) > 0 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			res := lint.RunAll(helmChartDir, helmValues(t, c.files, nil), helmNamespace, lint.WithKubeVersion(kv))
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m.Error())
				} else {
					t.Logf("helm lint: %s", m.Error())
				}
			}
		})
	}
}

// TestHelmGrafanaDashboard: the chart's dashboard is deploy/grafana's, byte for byte, in a
// ConfigMap for Grafana's sidecar, in the namespace asked for.
func TestHelmGrafanaDashboard(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(deployDir, "grafana", "fedicache.json"))
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile(filepath.Join(helmChartDir, "dashboards", "fedicache.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(have) != string(want) {
		t.Fatal("deploy/helm/fedicache/dashboards/fedicache.json differs from deploy/grafana/fedicache.json: " +
			"copy it (cp deploy/grafana/fedicache.json deploy/helm/fedicache/dashboards/)")
	}
	k := render(t, manifestCase{name: "grafana", dir: "grafana"}).configMaps[0]
	for _, ns := range []string{"", "monitoring"} {
		h := helmRenderCase(t, nil, []string{"grafanaDashboard.enabled=true", "grafanaDashboard.namespace=" + ns})
		var cm *corev1.ConfigMap
		for _, c := range h.m.configMaps {
			if c.Data["fedicache.json"] != "" {
				cm = c
			}
		}
		wantNS := orDefault(ns, helmNamespace)
		switch {
		case cm == nil:
			t.Fatal("no ConfigMap holds fedicache.json")
		case cm.Data["fedicache.json"] != k.Data["fedicache.json"]:
			t.Error("the dashboard's ConfigMap does not hold deploy/grafana/fedicache.json as is")
		case cm.Labels["grafana_dashboard"] != "1":
			t.Errorf("the dashboard's ConfigMap labels %v: want grafana_dashboard: \"1\"", cm.Labels)
		case cm.Namespace != wantNS:
			t.Errorf("the dashboard's ConfigMap is in %q, want %q", cm.Namespace, wantNS)
		}
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestHelmOwnsNoMedia: the chart creates no volume claim and never asks Helm to keep a
// resource (helm.sh/resource-policy): it holds no media, and the old volume is only referenced.
func TestHelmOwnsNoMedia(t *testing.T) {
	err := filepath.WalkDir(helmChartDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, bad := range []string{"resource-policy", "kind: PersistentVolumeClaim", "volumeClaimTemplates"} {
			if strings.Contains(string(raw), bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h := helmRenderCase(t, nil, []string{"backfillJob.enabled=true", "autoscaling.enabled=true", "networkPolicy.enabled=true", "grafanaDashboard.enabled=true"})
	for _, o := range h.objects {
		if _, ok := o.Annotations["helm.sh/resource-policy"]; ok {
			t.Errorf("%s has helm.sh/resource-policy", o.Name)
		}
	}
	d := h.m.deployments[0].Spec.Template.Spec
	if c := claimOf(d); c != "mastodon-system" {
		t.Errorf("the Deployment mounts claim %q, want Mastodon's mastodon-system", c)
	}
}
