package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

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

// kn func's forms: a plain value, {{ env:NAME }}, {{ secret:name:key }},
// {{ configMap:name:key }}.
var (
	envName   = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	envRef    = regexp.MustCompile(`^\{\{\s*(secret|configMap):([-._a-zA-Z0-9]+):([-._a-zA-Z0-9]+)\s*\}\}$`)
	badInterp = regexp.MustCompile(`\{\{`)
)

func TestFuncYAMLIsAValidKnFuncGoCloudEventFunction(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "func.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f funcYAML
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("func.yaml: %v", err)
	}
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

	// The envs: well-formed, and every secret/configMap they name exists in
	// the base manifests with that key. FUNCTIONS and KAFKA_BROKERS stay
	// unset: the kn func service runs all six functions in-process.
	base := loadManifests(t, "base")
	for _, e := range f.Run.Envs {
		if !envName.MatchString(e.Name) {
			t.Errorf("func.yaml env name %q is invalid", e.Name)
		}
		if e.Name == "FUNCTIONS" || e.Name == "KAFKA_BROKERS" {
			t.Errorf("func.yaml sets %s; the kn func service runs all six functions in-process", e.Name)
		}
		m := envRef.FindStringSubmatch(e.Value)
		switch {
		case m == nil && badInterp.MatchString(e.Value):
			t.Errorf("func.yaml env %s: malformed reference %q", e.Name, e.Value)
		case m != nil && m[1] == "secret":
			if sec := base.secrets[m[2]]; sec == nil || sec.StringData[m[3]] == "" && len(sec.Data[m[3]]) == 0 {
				t.Errorf("func.yaml env %s: Secret %s key %s is not in infra/knative/base", e.Name, m[2], m[3])
			}
		case m != nil && m[1] == "configMap":
			if cm := base.configMaps[m[2]]; cm == nil || cm.Data[m[3]] == "" {
				t.Errorf("func.yaml env %s: ConfigMap %s key %s is not in infra/knative/base", e.Name, m[2], m[3])
			}
		}
	}
}
