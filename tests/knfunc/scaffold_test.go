// Package knfunc proves that the repository root is a Knative function kn
// func can build: it builds the root package the way kn func's Go scaffold
// does (a throwaway module `s` whose main.go calls
// knative.dev/func-go/cloudevents.Start(f.New()), with `replace <module> =>
// ./f` and f a link to the function root), starts it, and talks to it.
package knfunc

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/tests/e2e"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

// FuncGoVersion is the func-go runtime kn func 1.21+ scaffolds with.
const FuncGoVersion = "v0.22.0"

const scaffoldMain = `package main

import (
	"fmt"
	"os"

	ce "knative.dev/func-go/cloudevents"

	f "github.com/cupcake-factory/cupcake-factory"
)

func main() {
	if err := ce.Start(f.New()); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
`

func buildScaffold(t *testing.T) string {
	t.Helper()
	root, err := runner.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(root, filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	goMod := fmt.Sprintf("module s\n\ngo 1.25.0\n\nrequire (\n\tgithub.com/cupcake-factory/cupcake-factory v0.0.0\n\tknative.dev/func-go %s\n)\n\nreplace github.com/cupcake-factory/cupcake-factory => ./f\n", FuncGoVersion)
	for name, content := range map[string]string{"go.mod": goMod, "main.go": scaffoldMain} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "function")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scaffold build failed: %v\n%s", err, out)
	}
	return bin
}

func start(t *testing.T, bin string, env ...string) string {
	t.Helper()
	addr := runner.FreeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LISTEN_ADDRESS=" + addr, "DATA_DIR=" + t.TempDir(), "LOG_LEVEL=WARN"}, env...)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url + "/health/readiness"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
	}
	t.Fatalf("scaffolded function not ready:\n%s", log.String())
	return ""
}

func post(t *testing.T, url string, headers map[string]string, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestRootFunctionBuildsAndAnswersUnderTheKnFuncScaffold(t *testing.T) {
	bin := buildScaffold(t)
	order := e2e.OrderData("o-kn1", "alice", "vanilla", "M", 6)
	tests := []struct {
		name      string
		env       []string
		wantReply string
	}{
		// All six in one instance: the chain runs inside, the shipped
		// notification comes back.
		{"all functions", nil, "com.cupcakes.order.shipped"},
		// One function per service, as on Knative: its reply comes back
		// for the platform to route. (On Knative each shares MongoDB; here
		// the embedded store is allowed for one function on purpose.)
		{"order-created only", []string{"FUNCTIONS=order-created", "ALLOW_PARTIAL_EMBEDDED_STORE=true"}, "com.cupcakes.order.credit-validated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := start(t, bin, tt.env...)
			resp := post(t, url, e2e.BinaryHeaders("kn-1", "com.cupcakes.order.created", "o-kn1"), order)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("ce-type") != tt.wantReply {
				t.Fatalf("binary mode: %d ce-type %q, want 200 %s", resp.StatusCode, resp.Header.Get("ce-type"), tt.wantReply)
			}
			structured := `{"specversion":"1.0","id":"kn-2","source":"curl","type":"com.cupcakes.order.created","datacontenttype":"application/json","data":` +
				e2e.OrderData("o-kn2", "alice", "lemon", "S", 1) + `}`
			resp = post(t, url, map[string]string{"Content-Type": "application/cloudevents+json"}, structured)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("ce-type") != tt.wantReply {
				t.Fatalf("structured mode: %d ce-type %q, want 200 %s", resp.StatusCode, resp.Header.Get("ce-type"), tt.wantReply)
			}
			bad := post(t, url, e2e.BinaryHeaders("kn-3", "com.cupcakes.order.created", ""), `{"orderId":"o-kn3"}`)
			if bad.StatusCode != http.StatusBadRequest {
				t.Errorf("invalid order: %d, want 400 (so Knative does not retry it)", bad.StatusCode)
			}
		})
	}
}
