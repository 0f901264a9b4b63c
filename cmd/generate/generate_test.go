package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// root is the repository, from this package's directory.
const root = "../.."

// TestEveryGeneratedFileIsWhatItsTemplateMakesOfThePipeline: a file made
// from events.Pipeline that was edited by hand, or not made again after
// the pipeline changed, fails here; `make generate` makes it again.
func TestEveryGeneratedFileIsWhatItsTemplateMakesOfThePipeline(t *testing.T) {
	paths, err := Templates(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no templates found")
	}
	d := NewData()
	for _, p := range paths {
		target := strings.TrimSuffix(p, Suffix)
		t.Run(target, func(t *testing.T) {
			want, err := Render(filepath.Join(root, p), d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(root, target))
			if err != nil {
				t.Fatalf("%v: run make generate", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is not what %s makes of events.Pipeline (edited by hand, or the pipeline changed): run make generate\n%s", target, p, firstDifference(got, want))
			}
		})
	}
}

// firstDifference shows the first line where got and want differ.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n  file:     " + gl + "\n  template: " + wl
		}
	}
	return ""
}

// kitchenWords are the stations' and kitchen steps' names as the default
// pipeline has them.
var kitchenWords = regexp.MustCompile(`(?i)mix|bake|decorat|packag|readyto`)

// TestNoTemplateNamesAStation: a template that names a kitchen step by
// hand is a file a new station would have to be added to by hand.
func TestNoTemplateNamesAStation(t *testing.T) {
	paths, err := Templates(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := kitchenWords.FindString(line); m != "" {
				t.Errorf("%s:%d names %q: %s", p, i+1, m, strings.TrimSpace(line))
			}
		}
	}
}

// TestARowAddedToThePipelineIsInEveryFileThatNamesTheOthers: a glazing
// station declared by one row gets its topic, its function's service and
// manifests, its REST route and its AsyncAPI channel wherever the kitchen's
// other steps have theirs.
func TestARowAddedToThePipelineIsInEveryFileThatNamesTheOthers(t *testing.T) {
	saved := events.Pipeline
	t.Cleanup(func() { events.Pipeline = saved })
	i := slices.IndexFunc(saved, func(s events.Step) bool { return s.Records == events.StatusBaked })
	events.Pipeline = slices.Insert(slices.Clone(saved), i+1, events.Step{Function: "glazed", Takes: "com.cupcakes.order.glazed",
		Topic: "readytoglaze", Records: "glazed", Station: "glazer", Inform: "InformNewOrderToGlaze", Route: "glaze"})
	d := NewData()
	paths, err := Templates(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		out, err := Render(filepath.Join(root, p), d)
		if err != nil {
			t.Fatal(err)
		}
		target := strings.TrimSuffix(p, Suffix)
		if strings.HasSuffix(target, ".json") && !json.Valid(out) {
			t.Errorf("%s made with a glazing row is not valid JSON", target)
		}
		if !strings.Contains(string(out), "readyto"+"decorate") {
			continue // names no kitchen topic: nothing to add either
		}
		for _, want := range []string{"readytoglaze"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s names the other kitchen topics, not %s", target, want)
			}
		}
	}
	// Where each kind of file names its part.
	wants := map[string][]string{
		"docker-compose.yml":                     {"\n  glazed:\n", "FUNCTIONS: glazed"},
		"infra/knative/base/40-functions.yaml":   {"name: glazed", "serving.knative.dev/service/cupcake-factory/glazed"},
		"infra/knative/source/10-sequences.yaml": {"# glazed replies com.cupcakes.order.decorated -> readytopackage", "# baked replies com.cupcakes.order.glazed -> readytoglaze"},
		"infra/knative/broker/20-triggers.yaml":  {"type: com.cupcakes.order.glazed"},
		"infra/observability/prometheus.yml":     {"- glazed:8080"},
		"infra/httpapi/openapi.json":             {`"/api/v1/order/glaze"`, `"glazer"`, "InformNewOrderToGlaze", `"glazed"`},
		"events/asyncapi.json":                   {`"readytoglaze"`, `"glazed-send-decorated"`, `"com.cupcakes.order.glazed"`},
	}
	for target, subs := range wants {
		out, err := Render(filepath.Join(root, target+Suffix), d)
		if err != nil {
			t.Fatal(err)
		}
		for _, sub := range subs {
			if !strings.Contains(string(out), sub) {
				t.Errorf("%s made with a glazing row lacks %q", target, sub)
			}
		}
	}
}
