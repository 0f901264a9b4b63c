package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

// system is one running cupcake-factory and a client that places orders
// over REST and watches them ship on the notification stream, as a shop
// and its kitchen screen would.
type system struct {
	missed atomic.Int64 // shipped orders the stream did not tell about
	mu     sync.Mutex
	times  map[string]timing // by order id
	base   string
	srv    *runner.Server
	// more are further replicas sharing the store and the broker: orders
	// are placed on all of them in turn (a load balancer's round robin).
	more    []*system
	placed  atomic.Int64
	reads   atomic.Int64 // orders the client read by GET (one find each on MongoDB)
	client  *http.Client
	shipped *watcher
	cancel  context.CancelFunc
}

// timing is when the client placed an order, when the POST returned, and
// when the stream said it had shipped.
type timing struct{ start, accepted, seen time.Time }

// start runs bin with env (KEY=value) on a free loopback port, waits until
// it is ready, and opens the notification stream.
func start(bin, dataDir string, env ...string) (*system, error) {
	addr, err := runner.FreeAddress()
	if err != nil {
		return nil, err
	}
	vars := map[string]string{"LISTEN_ADDRESS": addr, "DATA_DIR": dataDir, "LOG_LEVEL": "ERROR"}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	srv, err := runner.Exec(bin, vars)
	if err != nil {
		return nil, err
	}
	s := &system{base: "http://" + addr, srv: srv, shipped: newWatcher(), times: map[string]timing{},
		client: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}}
	if err := srv.WaitReady(s.base, 60*time.Second); err != nil {
		srv.Stop()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := s.shipped.follow(ctx, s.base+"/api/v1/notifications"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *system) stop() {
	if s.cancel != nil {
		s.cancel()
	}
	for _, r := range s.more {
		r.srv.Stop()
	}
	s.srv.Stop()
}

// startReplica runs one more replica beside s, on a free loopback port.
func (s *system) startReplica(bin string, env map[string]string) error {
	addr, err := runner.FreeAddress()
	if err != nil {
		return err
	}
	vars := map[string]string{"LISTEN_ADDRESS": addr, "LOG_LEVEL": "ERROR"}
	for k, v := range env {
		vars[k] = v
	}
	srv, err := runner.Exec(bin, vars)
	if err != nil {
		return err
	}
	r := &system{base: "http://" + addr, srv: srv, client: s.client}
	s.more = append(s.more, r)
	return srv.WaitReady(r.base, 60*time.Second)
}

// all is every replica, s first.
func (s *system) all() []*system { return append([]*system{s}, s.more...) }

// next is the replica the next order goes to.
func (s *system) next() *system {
	all := s.all()
	return all[int(s.placed.Add(1))%len(all)]
}

func (s *system) do(method, path, body string) ([]byte, int, error) {
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := s.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return b, res.StatusCode, err
}

func (s *system) createCustomer(id string) error {
	b, st, err := s.do(http.MethodPost, "/api/v1/customers",
		fmt.Sprintf(`{"customerId":%q,"name":"Bench","creditLimit":10000000000}`, id))
	if err != nil || st != http.StatusCreated {
		return fmt.Errorf("create customer %s: %d %s %v", id, st, b, err)
	}
	return nil
}

// one is every order for one customer.
func one(customer string) func(int) string { return func(int) string { return customer } }

// order places one order for customer and returns how long it took until
// the stream said it had shipped.
func (s *system) order(customer string) (time.Duration, error) {
	_, d, err := s.placeOrder(customer)
	return d, err
}

// placeOrder is order, telling the order's id too.
func (s *system) placeOrder(customer string) (string, time.Duration, error) {
	start := time.Now()
	b, st, err := s.next().do(http.MethodPost, "/api/v1/order",
		fmt.Sprintf(`{"customerId":%q,"items":[{"flavour":"vanilla","size":"S","quantity":1}]}`, customer))
	accepted := time.Now()
	if err != nil || st != http.StatusAccepted {
		return "", 0, fmt.Errorf("place order: %d %s %v", st, b, err)
	}
	var a struct {
		OrderID string `json:"orderId"`
	}
	if err := json.Unmarshal(b, &a); err != nil || a.OrderID == "" {
		return "", 0, fmt.Errorf("place order: no orderId in %s", b)
	}
	check := time.NewTicker(5 * time.Second)
	defer check.Stop()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case at := <-s.shipped.wait(a.OrderID):
			s.mu.Lock()
			s.times[a.OrderID] = timing{start: start, accepted: accepted, seen: at}
			s.mu.Unlock()
			return a.OrderID, at.Sub(start), nil
		case <-check.C:
			// Not seen for a while: the stream may have dropped this client
			// as too slow (then it reconnects), or the order is stuck.
			if st := s.status(a.OrderID); st == "shipped" {
				s.missed.Add(1)
				return a.OrderID, time.Since(start), nil
			}
		case <-deadline:
			return a.OrderID, 0, fmt.Errorf("order %s did not ship within 2 minutes (it is %s)", a.OrderID, s.status(a.OrderID))
		case <-s.srv.Done():
			return a.OrderID, 0, fmt.Errorf("cupcake-factory exited:\n%s", s.srv.Log())
		}
	}
}

// status is an order's state as the API tells it.
func (s *system) status(id string) string {
	s.reads.Add(1)
	b, st, err := s.do(http.MethodGet, "/api/v1/order/"+id, "")
	if err != nil || st != http.StatusOK {
		return fmt.Sprintf("unknown (%d %v)", st, err)
	}
	var o struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(b, &o)
	return o.Status
}

// stages reads orders' histories and returns, per step of the flow, how
// long each order took from the step before (store timestamps, in
// milliseconds).
func (s *system) stages(ids []string) (map[string][]time.Duration, error) {
	out := map[string][]time.Duration{}
	for _, id := range ids {
		b, st, err := s.do(http.MethodGet, "/api/v1/order/"+id, "")
		if err != nil || st != http.StatusOK {
			return nil, fmt.Errorf("GET order %s: %d %v", id, st, err)
		}
		var o struct {
			History []struct {
				Status string    `json:"status"`
				At     time.Time `json:"at"`
			} `json:"history"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return nil, err
		}
		for i := 1; i < len(o.History); i++ {
			k := o.History[i-1].Status + " → " + o.History[i].Status
			out[k] = append(out[k], o.History[i].At.Sub(o.History[i-1].At))
		}
		s.mu.Lock()
		t, ok := s.times[id]
		s.mu.Unlock()
		if n := len(o.History); ok && n > 0 {
			out["accepted"] = append(out["accepted"], t.accepted.Sub(t.start))
			out["placed → created"] = append(out["placed → created"], o.History[0].At.Sub(t.start))
			out["shipped → seen"] = append(out["shipped → seen"], t.seen.Sub(o.History[n-1].At))
			out["placed → shipped"] = append(out["placed → shipped"], o.History[n-1].At.Sub(t.start))
		}
	}
	return out, nil
}

// saturate places n orders with c of them in flight at once (a new one as
// soon as one ships), and returns the time taken, each order's latency and
// when each finished.
func (s *system) saturate(customer func(i int) string, n, c int) (time.Duration, []time.Duration, []time.Time, error) {
	var (
		mu       sync.Mutex
		lat      []time.Duration
		finished []time.Time
		firstErr error
		next     = make(chan int, n)
		wg       sync.WaitGroup
	)
	for i := range n {
		next <- i
	}
	close(next)
	start := time.Now()
	for range c {
		wg.Go(func() {
			for i := range next {
				d, err := s.order(customer(i))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, d)
				finished = append(finished, time.Now())
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), lat, finished, firstErr
}

// offer places orders at rate per second for d, each on its own, whether or
// not earlier ones have shipped, and returns their latencies.
func (s *system) offer(customer func(i int) string, rate int, d time.Duration) ([]time.Duration, []string, error) {
	var (
		mu       sync.Mutex
		lat      []time.Duration
		ids      []string
		firstErr error
		wg       sync.WaitGroup
	)
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		wg.Go(func() {
			id, d, err := s.placeOrder(customer(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			lat, ids = append(lat, d), append(ids, id)
		})
	}
	wg.Wait()
	return lat, ids, firstErr
}

// listLatency times GET path n times, one after the other.
func (s *system) listLatency(path string, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		b, st, err := s.do(http.MethodGet, path, "")
		if err != nil || st != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %s %v", path, st, b, err)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// cursorAt follows next from path for pages pages and returns the path of
// the page after them: a page deep in the listing.
func (s *system) cursorAt(path string, pages int) (string, error) {
	for range pages {
		b, st, err := s.do(http.MethodGet, path, "")
		if err != nil || st != http.StatusOK {
			return "", fmt.Errorf("GET %s: %d %v", path, st, err)
		}
		var p struct {
			Next string `json:"next"`
		}
		if err := json.Unmarshal(b, &p); err != nil || p.Next == "" {
			return "", fmt.Errorf("GET %s: no next page", path)
		}
		path = p.Next
	}
	return path, nil
}

// watcher reads the notification stream and tells when each order shipped.
type watcher struct {
	mu sync.Mutex
	at map[string]chan time.Time
}

func newWatcher() *watcher { return &watcher{at: map[string]chan time.Time{}} }

func (w *watcher) slot(id string) chan time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.at[id]
	if !ok {
		c = make(chan time.Time, 1)
		w.at[id] = c
	}
	return c
}

// wait returns the channel that gets the time order id shipped (the stream
// may have said so before the caller asks).
func (w *watcher) wait(id string) <-chan time.Time { return w.slot(id) }

func (w *watcher) follow(ctx context.Context, url string) error {
	body, err := w.open(ctx, url, "")
	if err != nil {
		return err
	}
	go func() {
		last := ""
		for {
			last = w.read(body, last)
			body.Close()
			// The server dropped this client as too slow (or went away):
			// reconnect from the last id, as a browser would.
			for body = nil; body == nil && ctx.Err() == nil; {
				if body, err = w.open(ctx, url, last); err != nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
	return nil
}

func (w *watcher) open(ctx context.Context, url, lastID string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("open the notification stream: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return nil, fmt.Errorf("open the notification stream: HTTP %d", res.StatusCode)
	}
	return res.Body, nil
}

// read tells the shipped orders it reads until the stream ends, and
// returns the last id it saw.
func (w *watcher) read(body io.Reader, last string) string {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			last = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "OrderStatusChanged" && strings.Contains(line, `"status":"shipped"`):
			// Only the shipped ones are decoded: the client takes as
			// little of the machine's CPU from the system as it can.
			var d struct {
				OrderID string `json:"orderId"`
				Status  string `json:"status"`
			}
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d) == nil && d.Status == "shipped" {
				select {
				case w.slot(d.OrderID) <- time.Now():
				default: // told twice
				}
			}
		case line == "":
			event = ""
		}
	}
	return last
}
