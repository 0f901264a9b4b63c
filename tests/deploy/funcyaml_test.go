package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// funcYAML is func.yaml as kn func (specVersion 0.36.0) knows it
// (knative.dev/func pkg/functions.Function). Unknown fields fail the decode.
type funcYAML struct {
	SpecVersion string    `json:"specVersion"`
	Name        string    `json:"name"`
	Domain      string    `json:"domain,omitempty"`
	Runtime     string    `json:"runtime"`
	Registry    string    `json:"registry,omitempty"`
	Image       string    `json:"image,omitempty"`
	Namespace   string    `json:"namespace,omitempty"`
	Created     time.Time `json:"created"`
	Invoke      string    `json:"invoke,omitempty"`
	Build       struct {
		Git struct {
			URL        string `json:"url,omitempty"`
			Revision   string `json:"revision,omitempty"`
			ContextDir string `json:"contextDir,omitempty"`
		} `json:"git,omitempty"`
		BuilderImages      map[string]string `json:"builderImages,omitempty"`
		Buildpacks         []string          `json:"buildpacks,omitempty"`
		Builder            string            `json:"builder,omitempty"`
		BuildEnvs          []funcEnv         `json:"buildEnvs,omitempty"`
		PVCSize            string            `json:"pvcSize,omitempty"`
		RemoteStorageClass string            `json:"remoteStorageClass,omitempty"`
		BaseImage          string            `json:"baseImage,omitempty"`
	} `json:"build,omitempty"`
	Run struct {
		Volumes      []map[string]any `json:"volumes,omitempty"`
		Envs         []funcEnv        `json:"envs,omitempty"`
		StartTimeout int              `json:"startTimeout,omitempty"`
	} `json:"run,omitempty"`
	Deploy struct {
		Namespace   string            `json:"namespace,omitempty"`
		Remote      bool              `json:"remote,omitempty"`
		Image       string            `json:"image,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Options     struct {
			Scale *struct {
				Min         *int64   `json:"min,omitempty"`
				Max         *int64   `json:"max,omitempty"`
				Metric      string   `json:"metric,omitempty"`
				Target      *float64 `json:"target,omitempty"`
				Utilization *float64 `json:"utilization,omitempty"`
			} `json:"scale,omitempty"`
			Resources map[string]map[string]any `json:"resources,omitempty"`
		} `json:"options,omitempty"`
		Labels          []struct{ Key, Value string } `json:"labels,omitempty"`
		HealthEndpoints struct {
			Liveness  string `json:"liveness,omitempty"`
			Readiness string `json:"readiness,omitempty"`
		} `json:"healthEndpoints,omitempty"`
		ServiceAccountName string `json:"serviceAccountName,omitempty"`
		Subscriptions      []struct {
			Source  string            `json:"source"`
			Filters map[string]string `json:"filters,omitempty"`
		} `json:"subscriptions,omitempty"`
	} `json:"deploy,omitempty"`
}

type funcEnv struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

const (
	// funcImage is the placeholder of infra/knative/func; `make
	// deploy-func` puts the image `kn func deploy` built in its place.
	funcImage = "registry.invalid/cupcake-factory/function:replace-me"
	// dataDir is where DATA_DIR=./data lands in the kn func image (its
	// working directory is /func).
	dataDir = "/func/data"
)

// funcSchemaHeader is the comment kn func writes at the top of func.yaml;
// it keeps no other comment when it rewrites the file.
var funcSchemaHeader = []string{
	"# $schema: https://raw.githubusercontent.com/knative/func/main/schema/func_yaml-schema.json",
	"# yaml-language-server: $schema=https://raw.githubusercontent.com/knative/func/main/schema/func_yaml-schema.json",
}

// Outside a cluster `func run` resolves only {{ env:NAME }} (from the
// caller's environment); {{ secret:... }} and {{ configMap:... }} reach the
// function as written (pkg/functions Interpolate).
var (
	envName    = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	localRef   = regexp.MustCompile(`^\{\{\s*env:[-._a-zA-Z0-9]+\s*\}\}$`)
	anyBracket = regexp.MustCompile(`\{\{`)
)

func readFuncYAML(t *testing.T) (funcYAML, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "func.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f funcYAML
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("func.yaml: %v", err)
	}
	return f, b
}

func TestFuncYAMLIsAValidKnFuncGoCloudEventFunction(t *testing.T) {
	f, _ := readFuncYAML(t)
	for what, got := range map[string][2]string{
		"specVersion":   {f.SpecVersion, "0.36.0"},
		"name":          {f.Name, "cupcake-factory"},
		"runtime":       {f.Runtime, "go"},
		"invoke":        {f.Invoke, "cloudevent"},
		"build.builder": {f.Build.Builder, "host"},
		"namespace":     {f.Deploy.Namespace, namespace},
		"liveness":      {f.Deploy.HealthEndpoints.Liveness, "/health/liveness"},
		"readiness":     {f.Deploy.HealthEndpoints.Readiness, "/health/readiness"},
	} {
		if got[0] != got[1] {
			t.Errorf("func.yaml %s = %q, want %q", what, got[0], got[1])
		}
	}
	if f.Created.IsZero() {
		t.Error("func.yaml: created is required (kn func treats the function as uninitialised without it)")
	}
	if f.Registry != "" || f.Image != "" {
		t.Errorf("func.yaml names registry %q, image %q: kn func writes the caller's --registry there; it is not for committing", f.Registry, f.Image)
	}
}

// TestFuncYAMLRunsOnALaptop: `func run --builder=host` starts the function
// with func.yaml's run.envs, and outside a cluster only {{ env:NAME }} is
// resolved. A {{ secret:... }} or {{ configMap:... }} would reach the
// function as that text (KITCHEN_MODE "{{ configMap:... }}" stops it), so
// the cluster's settings live in infra/knative/func instead.
func TestFuncYAMLRunsOnALaptop(t *testing.T) {
	f, _ := readFuncYAML(t)
	for _, e := range f.Run.Envs {
		if !envName.MatchString(e.Name) {
			t.Errorf("func.yaml env name %q is invalid", e.Name)
		}
		if e.Name == "FUNCTIONS" || e.Name == "KAFKA_BROKERS" {
			t.Errorf("func.yaml sets %s; the kn func service runs all six functions in-process", e.Name)
		}
		if anyBracket.MatchString(e.Value) && !localRef.MatchString(e.Value) {
			t.Errorf("func.yaml env %s = %q: func run passes it literally outside a cluster; cluster settings belong in infra/knative/func", e.Name, e.Value)
		}
	}
	// The emptyDir over ./data: the image holds the function directory as
	// it was on the builder's disk, a local ./data (make run's store)
	// included.
	if !hasEmptyDirAt(f.Run.Volumes, dataDir) {
		t.Errorf("func.yaml mounts no emptyDir at %s (volumes %v)", dataDir, f.Run.Volumes)
	}
}

func hasEmptyDirAt(vols []map[string]any, path string) bool {
	for _, v := range vols {
		if _, ok := v["emptyDir"]; ok && v["path"] == path {
			return true
		}
	}
	return false
}

// TestFuncRewritesNothingThatMatters: every func build rewrites func.yaml
// (its own header, no other comment) and every func command adds /.func to
// .gitignore when it is missing. Committed as func writes them, a func
// command leaves no diff but the caller's registry.
func TestFuncRewritesNothingThatMatters(t *testing.T) {
	_, b := readFuncYAML(t)
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if i >= len(funcSchemaHeader) || line != funcSchemaHeader[i] {
			t.Errorf("func.yaml line %d is a comment kn func would drop (say it in the README): %s", i+1, line)
		}
	}
	if !slices.Equal(lines[:min(len(lines), len(funcSchemaHeader))], funcSchemaHeader) {
		t.Errorf("func.yaml does not start with kn func's header %q", funcSchemaHeader)
	}
	gi, err := os.ReadFile(filepath.Join(repoRoot(t), ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(gi), "\n"), "/.func") {
		t.Error(".gitignore lacks /.func (kn func's build and run directory; func would add it)")
	}
}

// TestFuncServiceTakesTheClusterSettings: infra/knative/func is the
// Service kn func deploys, with what func.yaml leaves out: the shared
// MongoDB and the cupcake-factory ConfigMap. All six functions in one
// process, so neither FUNCTIONS nor KAFKA_BROKERS.
func TestFuncServiceTakesTheClusterSettings(t *testing.T) {
	f, _ := readFuncYAML(t)
	s := loadManifests(t, "base", "func")
	svc := s.services[f.Name]
	if svc == nil {
		t.Fatalf("infra/knative/func has no Service %s (func.yaml's name)", f.Name)
	}
	if svc.Namespace != f.Deploy.Namespace {
		t.Errorf("Service %s is in %q, func.yaml deploys to %q", f.Name, svc.Namespace, f.Deploy.Namespace)
	}
	c := svc.Spec.Template.Spec.Containers[0]
	if c.Image != funcImage {
		t.Errorf("Service %s runs %s, want the kn func image placeholder %s", f.Name, c.Image, funcImage)
	}
	env := s.env(t, svc)
	for _, name := range []string{"FUNCTIONS", "KAFKA_BROKERS"} {
		if v, ok := env[name]; ok {
			t.Errorf("Service %s sets %s=%q; it runs all six functions in-process", f.Name, name, v)
		}
	}
	if !strings.HasPrefix(env["MONGODB_URI"], "mongodb") {
		t.Errorf("Service %s: MONGODB_URI=%q, want the shared MongoDB", f.Name, env["MONGODB_URI"])
	}
	for _, name := range []string{"KITCHEN_MODE", "MONGODB_DATABASE", "SEED_DEMO"} {
		if env[name] == "" || env[name] != s.configMaps["cupcake-factory"].Data[name] {
			t.Errorf("Service %s: %s=%q, want the cupcake-factory ConfigMap's", f.Name, name, env[name])
		}
	}
	// What kn func deploy also sets, so that applying this changes nothing else.
	for _, l := range f.Deploy.Labels {
		if svc.Labels[l.Key] != l.Value {
			t.Errorf("Service %s: label %s=%q, func.yaml sets %q", f.Name, l.Key, svc.Labels[l.Key], l.Value)
		}
	}
	if svc.Labels["networking.knative.dev/visibility"] != "cluster-local" {
		t.Errorf("Service %s is reachable from outside the cluster; it cannot check tokens", f.Name)
	}
	if sc := f.Deploy.Options.Scale; sc == nil || sc.Min == nil || sc.Max == nil {
		t.Error("func.yaml sets no scale bounds")
	} else {
		ann := svc.Spec.Template.Annotations
		if ann["autoscaling.knative.dev/min-scale"] != fmt.Sprint(*sc.Min) || ann["autoscaling.knative.dev/max-scale"] != fmt.Sprint(*sc.Max) {
			t.Errorf("Service %s scales %q..%q, func.yaml %d..%d", f.Name, ann["autoscaling.knative.dev/min-scale"], ann["autoscaling.knative.dev/max-scale"], *sc.Min, *sc.Max)
		}
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range svc.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && m.MountPath == dataDir && v.EmptyDir != nil {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("Service %s mounts no emptyDir at %s, as func.yaml does", f.Name, dataDir)
	}
	for what, p := range map[string]*corev1.Probe{f.Deploy.HealthEndpoints.Readiness: c.ReadinessProbe, f.Deploy.HealthEndpoints.Liveness: c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != what {
			t.Errorf("Service %s: no httpGet probe on %s (func.yaml's)", f.Name, what)
		}
	}
}
