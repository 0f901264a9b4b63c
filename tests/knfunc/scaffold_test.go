// Package knfunc proves that the repository root is a Knative function the
// real kn func builds and runs. It rebuilds kn func's own Go scaffold as the
// host builder of each release line writes it into .func/build
// (pkg/scaffolding/scaffold.go): the template module `s` of
// templates/go/scaffolding/instanced-cloudevents, pinned versions and all
// (written here from the data in releases, with the go.sum `go mod tidy`
// writes for it, which is what func ships), then patched by that release's
// rules with golang.org/x/mod/modfile, the library func patches it with:
// the function's go line, `replace <module> => ./f` with f a link to the
// function root, and (from func v0.49) the function's requirements where
// the template pins nothing, and its go.sum appended. It runs `go build`
// there as func does: read-only, with the developer's environment and
// nothing more than the Makefile's `kn func deploy` line adds (func.yaml's
// build.buildEnvs do not reach the host builder). It then starts the binary
// with func.yaml's run.envs as `func run` passes them and talks to it.
package knfunc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
	"sigs.k8s.io/yaml"

	"github.com/cupcake-factory/cupcake-factory/tests/e2e"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

// release is one line of kn func releases as its host builder scaffolds an
// instanced (New()) CloudEvents Go function. Read from knative/func at the
// tags knative-v1.21.0 to -v1.23.1: within each line the template's go.mod,
// go.sum and main.go and scaffold.go are the same.
type release struct {
	name string
	// funcGo is the knative.dev/func-go the template requires.
	funcGo string
	// goLine is the template's go directive.
	goLine string
	// pins are the template's other (indirect) requirements.
	pins []string
	// kafka: main.go starts func-go's Kafka transport when FUNC_TRANSPORT
	// is kafka (v0.50+).
	kafka bool
	// mergesRequires: the function's requirements are added where the
	// template pins nothing, and its go.sum is appended (v0.49+). The
	// template's pins are never raised.
	mergesRequires bool
	// raisesGoOnly: the function's go line replaces the template's only
	// when it is newer (v0.50+); before, always.
	raisesGoOnly bool
}

// pinsV049 are the indirect requirements of the template of func v0.48 and
// v0.49 (knative-v1.21.x, -v1.22.x).
var pinsV049 = []string{
	"github.com/cloudevents/sdk-go/v2 v2.15.2",
	"github.com/google/uuid v1.6.0",
	"github.com/json-iterator/go v1.1.12",
	"github.com/mattn/go-colorable v0.1.13",
	"github.com/mattn/go-isatty v0.0.20",
	"github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd",
	"github.com/modern-go/reflect2 v1.0.2",
	"github.com/rs/zerolog v1.32.0",
	"go.uber.org/atomic v1.11.0",
	"go.uber.org/multierr v1.11.0",
	"go.uber.org/zap v1.27.0",
	"golang.org/x/sys v0.18.0",
}

// pinsV050 are those of func v0.50 (knative-v1.23.x).
var pinsV050 = []string{
	"github.com/IBM/sarama v1.50.3",
	"github.com/cloudevents/sdk-go/v2 v2.16.2",
	"github.com/davecgh/go-spew v1.1.1",
	"github.com/eapache/go-resiliency v1.7.0",
	"github.com/google/uuid v1.6.0",
	"github.com/hashicorp/go-uuid v1.0.3",
	"github.com/jcmturner/aescts/v2 v2.0.0",
	"github.com/jcmturner/dnsutils/v2 v2.0.0",
	"github.com/jcmturner/gofork v1.7.6",
	"github.com/jcmturner/gokrb5/v8 v8.4.4",
	"github.com/jcmturner/rpc/v2 v2.0.3",
	"github.com/json-iterator/go v1.1.12",
	"github.com/klauspost/compress v1.18.6",
	"github.com/mattn/go-colorable v0.1.15",
	"github.com/mattn/go-isatty v0.0.23",
	"github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd",
	"github.com/modern-go/reflect2 v1.0.2",
	"github.com/pierrec/lz4/v4 v4.1.27",
	"github.com/rcrowley/go-metrics v0.0.0-20250401214520-65e299d6c5c9",
	"github.com/rs/zerolog v1.35.1",
	"go.uber.org/multierr v1.11.0",
	"go.uber.org/zap v1.28.0",
	"golang.org/x/crypto v0.53.0",
	"golang.org/x/net v0.56.0",
	"golang.org/x/sys v0.47.0",
}

var releases = []release{
	{name: "func v0.48 (Knative 1.21)", funcGo: "v0.21.3", goLine: "1.21", pins: pinsV049},
	{name: "func v0.49 (Knative 1.22)", funcGo: "v0.21.3", goLine: "1.21", pins: pinsV049, mergesRequires: true},
	{name: "func v0.50 (Knative 1.23)", funcGo: "v0.22.0", goLine: "1.25.0", pins: pinsV050, kafka: true, mergesRequires: true, raisesGoOnly: true},
}

// templateGoMod is the template's go.mod: `function` stands for the
// function's module until func patches it.
func (r release) templateGoMod() string {
	var b strings.Builder
	fmt.Fprintf(&b, "module s\n\nreplace function => ./f\n\ngo %s\n\nrequire (\n\tfunction v0.0.0-00010101000000-000000000000\n\tknative.dev/func-go %s\n)\n\nrequire (\n", r.goLine, r.funcGo)
	for _, p := range r.pins {
		fmt.Fprintf(&b, "\t%s // indirect\n", p)
	}
	b.WriteString(")\n")
	return b.String()
}

// templateMain is the template's main.go.
func (r release) templateMain() string {
	if !r.kafka {
		return `package main

import (
	"fmt"
	"os"

	ce "knative.dev/func-go/cloudevents"

	f "function"
)

func main() {
	if err := ce.Start(f.New()); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
`
	}
	return `package main

import (
	"fmt"
	"os"

	ce "knative.dev/func-go/cloudevents"
	"knative.dev/func-go/kafka"

	f "function"
)

func main() {
	var err error
	if os.Getenv("FUNC_TRANSPORT") == "kafka" {
		err = kafka.Start(f.New())
	} else {
		err = ce.Start(f.New())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
`
}

// goCmd runs the go command with the developer's environment minus GOFLAGS
// (a GOFLAGS=-mod=mod there would hide what the deploy line lacks), outside
// any workspace, plus env.
func goCmd(dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOFLAGS=") && !strings.HasPrefix(kv, "GOWORK=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "GOWORK=off"), env...)
	return cmd
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// templateGoSum is the template's go.sum: what `go mod tidy` writes for
// the template module with a stand-in for `function` (a package New()
// alone, importing nothing), and the sums of every module its go.mod
// requires (func keeps pins tidy would drop, such as go.uber.org/atomic,
// with their sums). Checked against func's own files at v0.49.2 and
// v0.50.1: the same lines, except that func's v0.49 file also holds stale
// ones for versions nothing selects any more, and tidy here adds the sums of
// two test-only modules (testify, goleak); no build reads either.
func templateGoSum(t *testing.T, r release) []byte {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), r.templateGoMod())
	writeFile(t, filepath.Join(dir, "main.go"), r.templateMain())
	if err := os.Mkdir(filepath.Join(dir, "f"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "f", "go.mod"), "module function\n\ngo 1.21\n")
	writeFile(t, filepath.Join(dir, "f", "f.go"), "package function\n\nfunc New() any { return nil }\n")
	if out, err := goCmd(dir, nil, "mod", "tidy").CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy of the %s template: %v\n%s", r.name, err, out)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"mod", "download", "-json", "knative.dev/func-go@" + r.funcGo}
	for _, p := range r.pins {
		args = append(args, strings.Replace(p, " ", "@", 1))
	}
	out, err := goCmd(t.TempDir(), []string{"GO111MODULE=on"}, args...).Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(sum), "\n") {
		have[line] = true
	}
	for dec := json.NewDecoder(bytes.NewReader(out)); dec.More(); {
		var m struct{ Path, Version, Sum, GoModSum, Error string }
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if m.Error != "" || m.Sum == "" || m.GoModSum == "" {
			t.Fatalf("go mod download %s@%s: %q", m.Path, m.Version, m.Error)
		}
		for _, line := range []string{m.Path + " " + m.Version + " " + m.Sum, m.Path + " " + m.Version + "/go.mod " + m.GoModSum} {
			if !have[line] {
				sum = append(sum, line+"\n"...)
			}
		}
	}
	return sum
}

// patchGoMod is func's patchGoMod of release r, step by step.
func patchGoMod(t *testing.T, r release, template []byte, fn *modfile.File) []byte {
	t.Helper()
	f, err := modfile.Parse("go.mod", template, nil)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	module := fn.Module.Mod.Path
	if fn.Go != nil && fn.Go.Version != "" {
		if !r.raisesGoOnly || f.Go == nil || semver.Compare("v"+fn.Go.Version, "v"+f.Go.Version) > 0 {
			must(f.AddGoStmt(fn.Go.Version))
		}
	}
	must(f.DropReplace("function", ""))
	must(f.AddReplace(module, "", "./f", ""))
	must(f.DropRequire("function"))
	must(f.AddRequire(module, "v0.0.0-00010101000000-000000000000"))
	if r.mergesRequires {
		existing := map[string]bool{}
		for _, req := range f.Require {
			existing[req.Mod.Path] = true
		}
		for _, req := range fn.Require {
			if !existing[req.Mod.Path] {
				must(f.AddRequire(req.Mod.Path, req.Mod.Version))
			}
		}
	}
	out, err := f.Format()
	must(err)
	return out
}

// writeScaffold writes what func writes into .func/build.
func writeScaffold(t *testing.T, r release, root string) string {
	t.Helper()
	sum := templateGoSum(t, r)
	fnMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	fn, err := modfile.Parse("go.mod", fnMod, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), string(patchGoMod(t, r, []byte(r.templateGoMod()), fn)))
	if r.mergesRequires {
		fnSum, err := os.ReadFile(filepath.Join(root, "go.sum"))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		sum = append(sum, fnSum...)
	}
	writeFile(t, filepath.Join(dir, "go.sum"), string(sum))
	writeFile(t, filepath.Join(dir, "main.go"), strings.ReplaceAll(r.templateMain(), "function", fn.Module.Mod.Path))
	if err := os.Symlink(root, filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// assignment is a NAME=value word in front of a shell command.
var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// leadingAssignments are the NAME=value words before the command in line.
func leadingAssignments(line string) []string {
	var env []string
	for _, w := range strings.Fields(line) {
		if !assignment.MatchString(w) {
			break
		}
		env = append(env, w)
	}
	return env
}

// deployEnv is the environment the Makefile gives `kn func deploy`. That,
// and the developer's own, is all func's host build sees: func hands
// func.yaml's build.buildEnvs to the pack and s2i builders only (v0.48 to
// v0.50, pkg/oci/go_builder.go).
func deployEnv(t *testing.T, root string) []string {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(string(mk), "\n") {
		if strings.HasPrefix(line, "\t") && strings.Contains(line, " func deploy ") {
			lines = append(lines, line)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("want one kn func deploy line in the Makefile, found %q", lines)
	}
	return leadingAssignments(lines[0])
}

// envPattern is func's own (pkg/functions Interpolate): outside a cluster
// only {{ env:NAME }} is resolved.
var envPattern = regexp.MustCompile(`^{{\s*(\w+)\s*:(\w+)\s*}}$`)

// funcRunEnv is what `func run` adds to the function's environment from
// func.yaml's run.envs: {{ env:NAME }} takes the caller's NAME (func stops
// when it is unset); anything else, {{ secret:... }} and {{ configMap:... }}
// included, is passed as written.
func funcRunEnv(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "func.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Run struct {
			Envs []struct{ Name, Value *string }
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("func.yaml: %v", err)
	}
	var env []string
	for _, e := range f.Run.Envs {
		if e.Name == nil || e.Value == nil {
			continue
		}
		v := *e.Value
		if m := envPattern.FindStringSubmatch(v); m != nil && m[1] == "env" {
			local, ok := os.LookupEnv(m[2])
			if !ok {
				t.Fatalf("func run would stop: func.yaml's %s needs %s in the developer's environment", *e.Name, m[2])
			}
			v = local
		}
		env = append(env, *e.Name+"="+v)
	}
	return env
}

// start runs the function as `func run` does: its environment, then
// LISTEN_ADDRESS, then func.yaml's run.envs (the last value of a name wins).
// DATA_DIR points into the test's temporary directory, where func run would
// use ./data in the function root.
func start(t *testing.T, bin string, runEnv []string, env ...string) string {
	t.Helper()
	addr := runner.FreeAddr(t)
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "DATA_DIR=" + t.TempDir(), "LOG_LEVEL=WARN"}, env...)
	cmd.Env = append(append(cmd.Env, "LISTEN_ADDRESS="+addr), runEnv...)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	url := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the function exited before it was ready (%v), as func run would report:\n%s", err, log.String())
		default:
		}
		if resp, err := http.Get(url + "/health/readiness"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
	}
	t.Fatalf("the function was not ready within 20s:\n%s", log.String())
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

// builtWith is the version of module path the binary was linked with.
func builtWith(t *testing.T, bin, path string) string {
	t.Helper()
	out, err := goCmd(filepath.Dir(bin), nil, "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "dep" && f[1] == path {
			return f[2]
		}
	}
	return ""
}

// TestTheDeployLineBuildsUnderEveryFuncReleaseAndTheFunctionAnswers: the
// build func's host builder runs for `kn func deploy` succeeds for func
// v0.48 to v0.50 with the Makefile's environment and nothing more, links the
// func-go the release scaffolds with, and the binary, started as `func run`
// starts it with func.yaml, answers CloudEvents.
func TestTheDeployLineBuildsUnderEveryFuncReleaseAndTheFunctionAnswers(t *testing.T) {
	root, err := runner.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	env, runEnv := deployEnv(t, root), funcRunEnv(t, root)
	order := e2e.OrderData("o-kn1", "alice", "vanilla", "M", 6)
	cases := []struct {
		name      string
		env       []string
		wantReply string
	}{
		// All six in one instance, as kn func deploys and runs it: the chain
		// runs inside, the shipped notification comes back.
		{"all functions", nil, "com.cupcakes.order.shipped"},
		// One function per instance: its reply comes back for the platform
		// to route. (Deployed, each shares MongoDB; here the embedded store
		// is allowed for one function on purpose.)
		{"order-created only", []string{"FUNCTIONS=order-created", "ALLOW_PARTIAL_EMBEDDED_STORE=true"}, "com.cupcakes.order.credit-validated"},
	}
	for _, r := range releases {
		t.Run(r.name, func(t *testing.T) {
			dir := writeScaffold(t, r, root)
			goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(dir, "result", "f")
			// func: `go build -o <out>` in the scaffold with CGO_ENABLED=0,
			// GOOS and GOARCH per platform (here only this machine's).
			build := goCmd(dir, append([]string{"CGO_ENABLED=0"}, env...), "build", "-o", bin)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("func build --builder=host fails under %s with the Makefile's kn func deploy environment %q (func.yaml's buildEnvs do not reach this build): %v\n%s\nthe scaffold's go.mod:\n%s", r.name, env, err, out, goMod)
			}
			if got := builtWith(t, bin, "knative.dev/func-go"); got != r.funcGo {
				t.Errorf("linked with knative.dev/func-go %q, %s scaffolds with %s", got, r.name, r.funcGo)
			}
			for _, tt := range cases {
				t.Run(tt.name, func(t *testing.T) {
					url := start(t, bin, runEnv, tt.env...)
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
		})
	}
}

// TestTheReadmeBuildsAndDeploysAsTheMakefileDoes: every `kn func build` or
// `kn func deploy` command the READMEs show (a line of a code block, or a
// code span with flags) sets the environment the Makefile's deploy line
// sets, the one the build above is checked with.
func TestTheReadmeBuildsAndDeploysAsTheMakefileDoes(t *testing.T) {
	root, err := runner.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(deployEnv(t, root), " ")
	for _, doc := range []string{"README.md", filepath.Join("infra", "knative", "README.md")} {
		b, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for i, line := range commands(string(b)) {
			if line == "" {
				continue
			}
			seen++
			if got := strings.Join(leadingAssignments(line), " "); got != want {
				t.Errorf("%s line %d runs kn func with %q in front, the Makefile with %q:\n%s", doc, i+1, got, want, line)
			}
		}
		if seen == 0 {
			t.Errorf("%s shows no kn func build or deploy command", doc)
		}
	}
}

var (
	funcBuild     = regexp.MustCompile(`\bfunc (build|deploy)\b`)
	funcBuildSpan = regexp.MustCompile("`([^`]*\\bfunc (build|deploy) --[^`]*)`")
)

// commands are, by line (index = line number - 1), the kn func build or
// deploy commands a markdown document shows: a line of a code block, or a
// code span with flags elsewhere (a span with none names the command).
func commands(doc string) []string {
	lines := strings.Split(doc, "\n")
	cmds := make([]string, len(lines))
	inCode := false
	for i, line := range lines {
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "```"):
			inCode = !inCode
		case inCode && funcBuild.MatchString(line):
			cmds[i] = strings.TrimSpace(line)
		case !inCode:
			if m := funcBuildSpan.FindStringSubmatch(line); m != nil {
				cmds[i] = m[1]
			}
		}
	}
	return cmds
}
