package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Knative's, Kubernetes' and compose-go's modules are for these tests only:
// neither the runner binary nor the kn func root package may depend on them.
var testOnly = []string{"knative.dev/eventing", "knative.dev/serving", "knative.dev/pkg", "k8s.io/", "sigs.k8s.io/", "github.com/compose-spec/"}

func TestHeavyTestDependenciesStayOutOfTheProduct(t *testing.T) {
	root := repoRoot(t)
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range testOnly {
		if strings.Contains(string(mod), m) {
			t.Errorf("the product's go.mod requires %s", m)
		}
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./cmd/cupcake-factory", ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, m := range testOnly {
			if strings.HasPrefix(pkg, m) {
				t.Errorf("the product imports %s", pkg)
			}
		}
	}
}
