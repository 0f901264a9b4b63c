// Package runner builds the real cupcake-factory binary and runs it as a
// user would: its own process, configured by environment variables, on a
// free loopback port, spoken to over HTTP.
package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/cupcake-factory once per test process and returns its path.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cupcake-factory-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath, buildErr = Build(dir)
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// Build compiles cmd/cupcake-factory into dir, as `make build` would, and
// returns the binary's path (also for the bench commands, which have no
// testing.TB).
func Build(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "cupcake-factory")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/cupcake-factory")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// RepoRoot finds the product module's root: the nearest directory above
// the working directory whose go.mod declares the product module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/cupcake-factory/cupcake-factory\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no product go.mod above the working directory")
		}
		dir = parent
	}
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Process is a running cupcake-factory.
type Process struct {
	URL  string
	Env  map[string]string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	tb   testing.TB
}

// Start runs the binary with env (on top of a clean environment holding
// only PATH and HOME) and waits until it is ready. It is stopped when the
// test ends.
func Start(tb testing.TB, env map[string]string) *Process {
	tb.Helper()
	p := Launch(tb, env)
	p.WaitReady(20 * time.Second)
	return p
}

// Launch runs the binary like Start, but returns without waiting until it
// is ready.
func Launch(tb testing.TB, env map[string]string) *Process {
	tb.Helper()
	full := map[string]string{"LISTEN_ADDRESS": FreeAddr(tb), "DATA_DIR": tb.TempDir(), "LOG_LEVEL": "WARN"}
	for k, v := range env {
		full[k] = v
	}
	p := &Process{URL: "http://" + full["LISTEN_ADDRESS"], Env: full, tb: tb}
	p.launch()
	tb.Cleanup(func() { p.Stop() })
	return p
}

func (p *Process) start() {
	p.tb.Helper()
	p.launch()
	p.WaitReady(20 * time.Second)
}

// Exited reports whether the process has ended by itself.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Readiness returns the status and body of /health/readiness; status 0 if
// the process does not answer.
func (p *Process) Readiness() (int, string) {
	resp, err := http.Get(p.URL + "/health/readiness")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *Process) launch() {
	p.tb.Helper()
	cmd := exec.Command(Binary(p.tb))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range p.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p.log = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.tb.Fatal(err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(p.done) }()
}

// WaitReady waits until the process reports ready, failing the test if it
// exits or is not ready within the time given.
func (p *Process) WaitReady(within time.Duration) {
	p.tb.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			p.tb.Fatalf("cupcake-factory exited at start:\n%s", p.log.String())
		default:
		}
		if resp, err := http.Get(p.URL + "/health/readiness"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	status, body := p.Readiness()
	p.tb.Fatalf("cupcake-factory not ready in %s (readiness %d %s):\n%s", within, status, body, p.log.String())
}

// Stop sends SIGTERM and waits for the process to exit.
func (p *Process) Stop() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.cmd = nil
}

// Kill ends the process at once, as a crash would.
func (p *Process) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// Restart stops the process and starts it again with the same environment.
func (p *Process) Restart() {
	p.tb.Helper()
	p.Stop()
	p.start()
}

// Log returns what the process wrote so far.
func (p *Process) Log() string { return p.log.String() }

// Response is an HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it cannot.
func (r Response) JSON(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("response %d is not JSON (%v): %s", r.Status, err, r.Body)
	}
}

// Do sends a request, as curl would.
func (p *Process) Do(tb testing.TB, method, path string, header map[string]string, body string) Response {
	tb.Helper()
	req, err := http.NewRequest(method, p.URL+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// PostJSON posts a JSON body.
func (p *Process) PostJSON(tb testing.TB, path, body string) Response {
	tb.Helper()
	return p.Do(tb, http.MethodPost, path, map[string]string{"Content-Type": "application/json"}, body)
}

// Get gets a path.
func (p *Process) Get(tb testing.TB, path string) Response {
	tb.Helper()
	return p.Do(tb, http.MethodGet, path, nil, "")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
