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
	addr, err := FreeAddress()
	if err != nil {
		tb.Fatal(err)
	}
	return addr
}

// FreeAddress is FreeAddr without a test (the bench commands).
func FreeAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Server is a running cupcake-factory, started without a test around it
// (the bench commands use it as it is; tests use it through Process).
type Server struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

// Exec runs bin with env on top of a clean environment holding only PATH
// and HOME, its output kept for Log.
func Exec(bin string, env map[string]string) (*Server, error) {
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	s := &Server{cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = cmd.Wait(); close(s.done) }()
	return s, nil
}

// WaitReady waits until the server at url reports ready; an error if it
// exits or is not ready within the time given.
func (s *Server) WaitReady(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("cupcake-factory exited at start:\n%s", s.Log())
		default:
		}
		if resp, err := http.Get(url + "/health/readiness"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	status, body := readiness(url)
	return fmt.Errorf("cupcake-factory not ready in %s (readiness %d %s):\n%s", within, status, body, s.Log())
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Done is closed once the server has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop sends SIGTERM and waits for the server to exit (killing it after
// 15 s); stopping one that has exited does nothing.
func (s *Server) Stop() {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
}

// Kill ends the server at once, as a crash would.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Log returns what the server wrote so far.
func (s *Server) Log() string { return s.log.String() }

// readiness returns the status and body of url's /health/readiness;
// status 0 if nothing answers.
func readiness(url string) (int, string) {
	resp, err := http.Get(url + "/health/readiness")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Process is a running cupcake-factory in a test.
type Process struct {
	URL string
	Env map[string]string
	srv *Server // nil once stopped
	log string  // what the last server wrote, once stopped
	tb  testing.TB
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

// Exited reports whether the process has ended (by itself, or stopped).
func (p *Process) Exited() bool {
	if p.srv == nil {
		return true
	}
	select {
	case <-p.srv.Done():
		return true
	default:
		return false
	}
}

// Readiness returns the status and body of /health/readiness; status 0 if
// the process does not answer.
func (p *Process) Readiness() (int, string) { return readiness(p.URL) }

func (p *Process) launch() {
	p.tb.Helper()
	srv, err := Exec(Binary(p.tb), p.Env)
	if err != nil {
		p.tb.Fatal(err)
	}
	p.srv = srv
}

// WaitReady waits until the process reports ready, failing the test if it
// exits or is not ready within the time given.
func (p *Process) WaitReady(within time.Duration) {
	p.tb.Helper()
	if err := p.srv.WaitReady(p.URL, within); err != nil {
		p.tb.Fatal(err)
	}
}

// Stop sends SIGTERM and waits for the process to exit.
func (p *Process) Stop() {
	if p.srv == nil {
		return
	}
	p.srv.Stop()
	p.log, p.srv = p.srv.Log(), nil
}

// Kill ends the process at once, as a crash would.
func (p *Process) Kill() {
	if p.srv == nil {
		return
	}
	p.srv.Kill()
	p.log, p.srv = p.srv.Log(), nil
}

// Restart stops the process and starts it again with the same environment.
func (p *Process) Restart() {
	p.tb.Helper()
	p.Stop()
	p.start()
}

// Log returns what the process wrote so far (the last run of it, once
// stopped).
func (p *Process) Log() string {
	if p.srv == nil {
		return p.log
	}
	return p.srv.Log()
}

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
