// Command ssebench measures what live-notification clients cost the order
// path: it builds and starts the real cupcake-factory (in-process, auto
// kitchen, authentication on), measures the order latency p50 (POST
// /api/v1/order, which in-process returns once the order has shipped)
// without clients, opens -clients notification streams that read
// everything, measures again, checks that streams beyond MAX_SSE_CLIENTS
// get 503 with Retry-After, closes the clients and watches the server's
// memory (VmRSS of its process) come back. Everything runs on loopback.
// It prints the figures and PASS/FAIL for each criterion, and exits 1 on
// a FAIL.
//
//	cd tests && go run ./cmd/ssebench -clients 2000 -orders 200
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

const token = "ssebench-admin-token-0123456789"

func main() {
	clients := flag.Int("clients", 2000, "live notification clients (MAX_SSE_CLIENTS is set to this)")
	orders := flag.Int("orders", 200, "orders per measurement")
	extra := flag.Int("extra", 20, "streams tried beyond the cap (each must get 503)")
	flag.Parse()
	if err := run(*clients, *orders, *extra); err != nil {
		fmt.Fprintln(os.Stderr, "ssebench:", err)
		os.Exit(1)
	}
}

func run(clients, orders, extra int) error {
	work, err := os.MkdirTemp("", "ssebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin, err := runner.Build(work)
	if err != nil {
		return err
	}
	addr, err := runner.FreeAddress()
	if err != nil {
		return err
	}
	srv, err := start(bin, work, addr, clients)
	if err != nil {
		return err
	}
	defer srv.Stop()
	base := "http://" + addr
	fmt.Printf("ssebench: cupcake-factory pid %d on %s, MAX_SSE_CLIENTS=%d, %d orders per measurement, %d cores\n\n",
		srv.Pid(), addr, clients, orders, numCPU())

	c := &http.Client{Timeout: 30 * time.Second}
	if res, body, err := do(c, http.MethodPost, base+"/api/v1/customers", `{"customerId":"bench","name":"Bench","creditLimit":1000000000}`); err != nil || res.StatusCode != http.StatusCreated {
		return fmt.Errorf("create the bench customer: %v %s", err, body)
	}
	for range 20 {
		if _, err := order(c, base); err != nil {
			return err
		}
	}
	rssIdle := rss(srv.Pid())
	without, err := measure(c, base, orders)
	if err != nil {
		return err
	}
	rssBefore := rss(srv.Pid())

	fmt.Printf("opening %d notification streams…\n", clients)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fleet, err := openFleet(ctx, addr, clients)
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	rssWithIdle := rss(srv.Pid())

	refused, retryAfter, err := tryBeyondCap(addr, extra)
	if err != nil {
		return err
	}

	received := fleet.bytes.Load()
	with, err := measure(c, base, orders)
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // let the last frames arrive
	rssWith := rss(srv.Pid())
	hwm := hwm(srv.Pid())
	perClient := float64(fleet.bytes.Load()-received) / float64(clients)
	dropped := fleet.ended.Load()

	fmt.Printf("closing the streams…\n")
	cancel()
	fleet.wait()
	after, rssAfter := settle(srv.Pid())
	streamsLeft, err := streamsOpen(c, base)
	if err != nil {
		return err
	}

	// A second crowd, opened and closed: if streams leaked, memory would
	// not come back to where the first crowd left it.
	fmt.Printf("opening and closing %d streams again…\n", clients)
	ctx2, cancel2 := context.WithCancel(context.Background())
	fleet2, err := openFleet(ctx2, addr, clients)
	if err != nil {
		cancel2()
		return err
	}
	time.Sleep(time.Second)
	rssSecond := rss(srv.Pid())
	cancel2()
	fleet2.wait()
	_, rssAfter2 := settle(srv.Pid())

	p50w, p50c := pct(without, 50), pct(with, 50)
	ratio := float64(p50c) / float64(p50w)
	fmt.Println()
	fmt.Printf("%-44s %10s %10s %10s\n", "order latency (POST until shipped)", "p50", "p90", "p99")
	fmt.Printf("%-44s %10s %10s %10s\n", "without streams", p50w, pct(without, 90), pct(without, 99))
	fmt.Printf("%-44s %10s %10s %10s\n", fmt.Sprintf("with %d streams reading everything", clients), p50c, pct(with, 90), pct(with, 99))
	fmt.Println()
	fmt.Printf("server memory (VmRSS): idle %.0f MB, after the first orders %.0f MB, %d streams open %.0f MB, with orders %.0f MB (peak VmHWM %.0f MB), after closing %.0f MB (each second: %s)\n",
		mb(rssIdle), mb(rssBefore), clients, mb(rssWithIdle), mb(rssWith), mb(hwm), mb(rssAfter), strings.Join(after, " "))
	fmt.Printf("a second crowd of %d streams: %.0f MB while open, %.0f MB after closing\n", clients, mb(rssSecond), mb(rssAfter2))
	fmt.Printf("each stream received %.0f KB during the measurement (%d orders); streams the server ended early: %d; streams still open after closing: %d\n",
		perClient/1024, orders, dropped, streamsLeft)
	fmt.Printf("streams beyond the cap: %d of %d refused with 503 (Retry-After %q)\n", refused, extra, retryAfter)
	fmt.Println()

	ok := true
	check := func(pass bool, what string) {
		verdict := "PASS"
		if !pass {
			verdict, ok = "FAIL", false
		}
		fmt.Printf("%s  %s\n", verdict, what)
	}
	check(ratio <= 2, fmt.Sprintf("order p50 with %d streams is %.2f× the p50 without (at most 2×)", clients, ratio))
	gaveBack := float64(hwm-rssAfter) / float64(hwm-rssBefore)
	check(gaveBack >= 0.85, fmt.Sprintf("closing the streams gave back %.0f%% of the memory they took (at least 85%%): %.0f MB → %.0f MB, from %.0f MB before them",
		gaveBack*100, mb(hwm), mb(rssAfter), mb(rssBefore)))
	check(rssAfter2 <= rssAfter+5<<20, fmt.Sprintf("a second crowd left memory where the first did (%.0f MB, then %.0f MB): nothing leaks", mb(rssAfter), mb(rssAfter2)))
	check(refused == extra && retryAfter != "", fmt.Sprintf("every stream beyond MAX_SSE_CLIENTS=%d got 503 with Retry-After", clients))
	check(dropped == 0, "no stream that kept reading was dropped")
	check(streamsLeft == 0, "the server let go of every closed stream")
	if !ok {
		return errors.New("a criterion failed")
	}
	return nil
}

// start runs the server on addr with authentication on and the stream cap
// at clients, and waits until it is ready.
func start(bin, work, addr string, clients int) (*runner.Server, error) {
	srv, err := runner.Exec(bin, map[string]string{
		"LISTEN_ADDRESS": addr, "DATA_DIR": filepath.Join(work, "data"), "LOG_LEVEL": "WARN",
		"AUTH_TOKENS": "admin:" + token, "MAX_SSE_CLIENTS": strconv.Itoa(clients),
	})
	if err != nil {
		return nil, err
	}
	if err := srv.WaitReady("http://"+addr, 20*time.Second); err != nil {
		srv.Stop()
		return nil, err
	}
	return srv, nil
}

func do(c *http.Client, method, url, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, b, err
}

// order places one order and returns how long until it had shipped.
func order(c *http.Client, base string) (time.Duration, error) {
	start := time.Now()
	res, body, err := do(c, http.MethodPost, base+"/api/v1/order", `{"customerId":"bench","items":[{"flavour":"vanilla","size":"S","quantity":1}]}`)
	took := time.Since(start)
	if err != nil {
		return 0, err
	}
	var a struct{ Status string }
	_ = json.Unmarshal(body, &a)
	if res.StatusCode != http.StatusAccepted || a.Status != "shipped" {
		return 0, fmt.Errorf("order: %d %s (want 202 and shipped)", res.StatusCode, body)
	}
	return took, nil
}

func measure(c *http.Client, base string, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		d, err := order(c, base)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// fleet is the open streams: each a raw connection that reads and throws
// away everything, the cheapest client there is, so that the clients' own
// CPU takes as little as possible from the server on the same machine.
type fleet struct {
	wg    sync.WaitGroup
	bytes atomic.Int64
	ended atomic.Int64 // streams the server closed while the client still read
}

func (f *fleet) wait() { f.wg.Wait() }

func streamRequest() string {
	return "GET /api/v1/notifications HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\nAuthorization: Bearer " + token + "\r\n\r\n"
}

// openStream connects and reads the status line and headers.
func openStream(addr string) (net.Conn, *bufio.Reader, int, string, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, nil, 0, "", err
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, streamRequest()); err != nil {
		conn.Close()
		return nil, nil, 0, "", err
	}
	br := bufio.NewReaderSize(conn, 32<<10)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, 0, "", err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, res.StatusCode, res.Header.Get("Retry-After"), nil
}

func openFleet(ctx context.Context, addr string, n int) (*fleet, error) {
	f := &fleet{}
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	var opened sync.WaitGroup
	for range n {
		opened.Add(1)
		sem <- struct{}{}
		go func() {
			conn, br, status, _, err := openStream(addr)
			<-sem
			if err == nil && status != http.StatusOK {
				conn.Close()
				err = fmt.Errorf("stream refused: %d", status)
			}
			if err != nil {
				errs <- err
				opened.Done()
				return
			}
			f.wg.Add(1)
			opened.Done()
			go func() {
				defer f.wg.Done()
				stop := context.AfterFunc(ctx, func() { conn.Close() })
				defer stop()
				buf := make([]byte, 16<<10)
				for {
					k, err := br.Read(buf)
					f.bytes.Add(int64(k))
					if err != nil {
						if ctx.Err() == nil {
							f.ended.Add(1)
						}
						return
					}
				}
			}()
		}()
	}
	opened.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("opening %d streams: %w", n, err)
	}
	return f, nil
}

// tryBeyondCap opens n more streams; each should be refused.
func tryBeyondCap(addr string, n int) (refused int, retryAfter string, err error) {
	for range n {
		conn, _, status, ra, err := openStream(addr)
		if err != nil {
			return 0, "", err
		}
		conn.Close()
		if status == http.StatusServiceUnavailable {
			refused++
			retryAfter = ra
		}
	}
	return refused, retryAfter, nil
}

// streamsOpen reads the server's own count of open streams from /metrics.
func streamsOpen(c *http.Client, base string) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, err := do(c, http.MethodGet, base+"/metrics", "")
		if err != nil {
			return 0, err
		}
		n := -1
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "cupcakes_sse_streams "); ok {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if n < 0 {
			return 0, errors.New("/metrics has no cupcakes_sse_streams")
		}
		if n == 0 || time.Now().After(deadline) {
			return n, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rss and hwm read VmRSS and VmHWM of a process, in bytes.
func rss(pid int) int64 { return procStatus(pid, "VmRSS:") }
func hwm(pid int) int64 { return procStatus(pid, "VmHWM:") }

func procStatus(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[min(i, len(s)-1)].Round(100 * time.Microsecond)
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}

// settle waits up to 10 s for the server to hand back the memory of closed
// streams (it does so itself once most of them are gone), and returns
// VmRSS each second and the last.
func settle(pid int) ([]string, int64) {
	var seen []string
	last := rss(pid)
	for range 10 {
		time.Sleep(time.Second)
		now := rss(pid)
		seen = append(seen, fmt.Sprintf("%.0f", mb(now)))
		if now >= last-1<<20 && len(seen) >= 4 {
			return seen, now
		}
		last = now
	}
	return seen, last
}
