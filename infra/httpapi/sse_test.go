package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	function "github.com/cupcake-factory/cupcake-factory"
	"github.com/cupcake-factory/cupcake-factory/infra/config"
	"github.com/cupcake-factory/cupcake-factory/infra/httpapi"
	"github.com/cupcake-factory/cupcake-factory/infra/metrics"
	"github.com/cupcake-factory/cupcake-factory/infra/notify"
)

// kitchen is the whole system in-process (the real App: functions, embedded
// store, notification hub) behind the real API on a real HTTP server.
type kitchen struct {
	app *function.App
	api *httpapi.Server
	srv *httptest.Server
}

// startKitchen starts the kitchen; opts adjust the API before it serves.
func startKitchen(t *testing.T, mode string, opts ...func(*httpapi.Server)) *kitchen {
	t.Helper()
	t.Setenv("DATA_DIR", t.TempDir())
	t.Setenv("KITCHEN_MODE", mode)
	t.Setenv("LISTEN_ADDRESS", "127.0.0.1:0")
	t.Setenv("KAFKA_BROKERS", "")
	t.Setenv("MONGODB_URI", "")
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := function.Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(app, app.Store, app.Hub, metrics.New(), log)
	api.KitchenMode = cfg.KitchenMode
	for _, o := range opts {
		o(api)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		// Streams end when their connections do; Close then waits for every
		// handler, so a leaked one would hang here.
		srv.CloseClientConnections()
		done := make(chan struct{})
		go func() { srv.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the server's handlers did not finish: a notification stream leaked")
		}
		_ = app.Close(context.Background())
	})
	return &kitchen{app: app, api: api, srv: srv}
}

// post sends JSON and fails the test unless the answer has the status want.
func (k *kitchen) post(t *testing.T, path string, body any, want int) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	res, err := k.srv.Client().Post(k.srv.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	if res.StatusCode != want {
		t.Fatalf("POST %s: %d %v, want %d", path, res.StatusCode, out, want)
	}
	return out
}

func (k *kitchen) placeOrder(t *testing.T) string {
	t.Helper()
	out := k.post(t, "/api/v1/order", map[string]any{
		"customerId": "alice", "items": []map[string]any{{"flavour": "vanilla", "size": "S", "quantity": 1}},
	}, http.StatusAccepted)
	return out["orderId"].(string)
}

func (k *kitchen) report(t *testing.T, step, orderID string) {
	t.Helper()
	k.post(t, "/api/v1/order/"+step, map[string]string{"orderId": orderID, "by": "tester"}, http.StatusAccepted)
}

// waitStreams waits until the hub has n streams open.
func (k *kitchen) waitStreams(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for k.app.Hub.Streams() != n {
		if time.Now().After(deadline) {
			t.Fatalf("hub has %d streams, want %d", k.app.Hub.Streams(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sseEvent is one message of a stream; a comment line comes as Comment.
type sseEvent struct {
	ID      uint64
	Name    string
	Data    notify.Payload
	Comment string
}

func (e sseEvent) String() string { return e.Name + "/" + e.Data.Status }

// stream is a client of GET /api/v1/notifications that parses what it reads.
type stream struct {
	events chan sseEvent
	close  context.CancelFunc
}

func openStream(t *testing.T, base, query string, lastID uint64) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/notifications"+query, nil)
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(lastID, 10))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET notifications%s: %d %s", query, res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &stream{events: make(chan sseEvent, 4096), close: cancel}
	go func() {
		defer res.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		var data string
		for sc.Scan() {
			line := sc.Text()
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch {
			case line == "":
				if ev.Name != "" {
					if err := json.Unmarshal([]byte(data), &ev.Data); err != nil {
						ev.Comment = "bad data: " + err.Error()
					}
					s.events <- ev
				}
				ev, data = sseEvent{}, ""
			case field == "":
				s.events <- sseEvent{Comment: value}
			case field == "id":
				ev.ID, _ = strconv.ParseUint(value, 10, 64)
			case field == "event":
				ev.Name = value
			case field == "data":
				data += value
			}
		}
	}()
	t.Cleanup(cancel)
	return s
}

// next returns the next event (comments skipped), or fails after a while.
func (s *stream) next(t *testing.T) sseEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.Name != "" {
				return ev
			}
		case <-timeout:
			t.Fatal("no event within 5s")
		}
	}
}

// quiet fails if an event arrives within d.
func (s *stream) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-s.events:
			if ok && ev.Name != "" {
				t.Fatalf("unexpected event %v (id %d)", ev, ev.ID)
			}
		case <-timeout:
			return
		}
	}
}

func (s *stream) take(t *testing.T, n int) []sseEvent {
	t.Helper()
	out := make([]sseEvent, n)
	for i := range out {
		out[i] = s.next(t)
	}
	return out
}

func names(evs []sseEvent) string { return fmt.Sprint(evs) }

// TestNotificationsNamedEventsFilteredByStation runs one order through a
// manual kitchen over REST, with a stream for everyone and one per station.
func TestNotificationsNamedEventsFilteredByStation(t *testing.T) {
	k := startKitchen(t, "manual")
	tests := []struct {
		station string
		want    []string
	}{
		{"", []string{
			"OrderStatusChanged/created",
			"InformNewOrderToMix/approved", "OrderStatusChanged/approved",
			"InformNewOrderToBake/mixed", "OrderStatusChanged/mixed",
			"InformNewOrderToDecorate/baked", "OrderStatusChanged/baked",
			"InformNewOrderToPackage/decorated", "OrderStatusChanged/decorated",
			"OrderStatusChanged/packaged", "OrderStatusChanged/shipped",
		}},
		{"mixer", []string{"InformNewOrderToMix/approved", "OrderStatusChanged/approved", "OrderStatusChanged/mixed"}},
		{"baker", []string{"InformNewOrderToBake/mixed", "OrderStatusChanged/mixed", "OrderStatusChanged/baked"}},
		{"decorator", []string{"InformNewOrderToDecorate/baked", "OrderStatusChanged/baked", "OrderStatusChanged/decorated"}},
		{"packaging", []string{"InformNewOrderToPackage/decorated", "OrderStatusChanged/decorated", "OrderStatusChanged/packaged"}},
	}
	streams := make([]*stream, len(tests))
	for i, tt := range tests {
		q := ""
		if tt.station != "" {
			q = "?station=" + tt.station
		}
		streams[i] = openStream(t, k.srv.URL, q, 0)
	}
	k.waitStreams(t, len(tests))

	id := k.placeOrder(t)
	for _, step := range []string{"mix", "bake", "decorate", "box"} {
		k.report(t, step, id)
	}

	for i, tt := range tests {
		t.Run("station="+tt.station, func(t *testing.T) {
			got := streams[i].take(t, len(tt.want))
			if names(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got  %v\nwant %v", got, tt.want)
			}
			var last uint64
			for _, ev := range got {
				if ev.Data.OrderID != id || ev.Data.CustomerID != "alice" || ev.Data.Amount != 150 || len(ev.Data.Items) != 1 || ev.Data.At.IsZero() {
					t.Fatalf("event %v has data %+v", ev, ev.Data)
				}
				if ev.ID <= last {
					t.Fatalf("id %d after %d", ev.ID, last)
				}
				last = ev.ID
			}
			streams[i].quiet(t, 50*time.Millisecond)
		})
	}
}

func TestNotificationsRefusesBadRequests(t *testing.T) {
	k := startKitchen(t, "manual")
	tests := []struct {
		name, query, lastID, want string
	}{
		{"unknown station", "?station=oven", "", "station must be one of"},
		{"bad Last-Event-ID", "", "yesterday", "Last-Event-ID must be a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, k.srv.URL+"/api/v1/notifications"+tt.query, nil)
			if tt.lastID != "" {
				req.Header.Set("Last-Event-ID", tt.lastID)
			}
			res, err := k.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body map[string]string
			_ = json.NewDecoder(res.Body).Decode(&body)
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(body["error"], tt.want) {
				t.Fatalf("got %d %v, want 400 with %q", res.StatusCode, body, tt.want)
			}
		})
	}
	if n := k.app.Hub.Streams(); n != 0 {
		t.Fatalf("a refused request left %d streams", n)
	}
}

// TestNotificationsResumeFromLastEventID: a client that reconnects with the
// id of the last event it saw gets what happened while it was away, then
// the live ones, with nothing twice.
func TestNotificationsResumeFromLastEventID(t *testing.T) {
	k := startKitchen(t, "manual")
	first := openStream(t, k.srv.URL, "", 0)
	k.waitStreams(t, 1)
	id := k.placeOrder(t)
	seen := first.take(t, 3) // created; InformNewOrderToMix, approved
	first.close()
	k.waitStreams(t, 0)

	k.report(t, "mix", id) // while nobody listens
	k.report(t, "bake", id)

	tests := []struct {
		station string
		want    []string
	}{
		{"", []string{"InformNewOrderToBake/mixed", "OrderStatusChanged/mixed", "InformNewOrderToDecorate/baked", "OrderStatusChanged/baked"}},
		{"baker", []string{"InformNewOrderToBake/mixed", "OrderStatusChanged/mixed", "OrderStatusChanged/baked"}},
		{"packaging", nil},
	}
	resumed := make([]*stream, len(tests))
	for i, tt := range tests {
		q := ""
		if tt.station != "" {
			q = "?station=" + tt.station
		}
		resumed[i] = openStream(t, k.srv.URL, q, seen[len(seen)-1].ID)
	}
	k.waitStreams(t, len(tests))
	for i, tt := range tests {
		got := resumed[i].take(t, len(tt.want))
		if names(got) != fmt.Sprint(tt.want) {
			t.Fatalf("station %q replayed %v, want %v", tt.station, got, tt.want)
		}
	}

	// Then live, after the replayed ones.
	k.report(t, "decorate", id)
	if got := resumed[0].take(t, 2); names(got) != "[InformNewOrderToPackage/decorated OrderStatusChanged/decorated]" {
		t.Fatalf("live after replay: %v", got)
	}
	if got := resumed[2].next(t); got.String() != "InformNewOrderToPackage/decorated" {
		t.Fatalf("packaging live: %v", got)
	}
}

func TestNotificationsSendKeepAlives(t *testing.T) {
	k := startKitchen(t, "manual")
	k.api.KeepAlive = 20 * time.Millisecond
	s := openStream(t, k.srv.URL, "?station=mixer", 0)
	var comments []string
	timeout := time.After(5 * time.Second)
	for len(comments) < 3 {
		select {
		case ev := <-s.events:
			if ev.Comment != "" {
				comments = append(comments, ev.Comment)
			}
		case <-timeout:
			t.Fatalf("comments so far: %q", comments)
		}
	}
	if fmt.Sprint(comments) != "[connected keep-alive keep-alive]" {
		t.Fatalf("comments = %q", comments)
	}
}

func TestNotificationsReleaseSubscriptionWhenClientLeaves(t *testing.T) {
	k := startKitchen(t, "manual")
	var streams []*stream
	for _, q := range []string{"", "?station=mixer", "?station=baker", ""} {
		streams = append(streams, openStream(t, k.srv.URL, q, 0))
	}
	k.waitStreams(t, len(streams))
	for i, s := range streams {
		s.close()
		k.waitStreams(t, len(streams)-i-1)
	}
}
