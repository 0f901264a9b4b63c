package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/httpapi"
	"github.com/cupcake-factory/cupcake-factory/infra/metrics"
	"github.com/cupcake-factory/cupcake-factory/infra/notify"
)

// slowClient opens a notification stream over a socket with a tiny receive
// buffer and never reads from it: the server's writes soon block.
func slowClient(t *testing.T, base, query string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /api/v1/notifications%s HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n", query)
	return conn
}

// vanishingClient opens a stream, reads its first lines, and hangs up.
func vanishingClient(t *testing.T, base string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /api/v1/notifications HTTP/1.1\r\nHost: test\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("vanishing client: %v", err)
		}
		if strings.Contains(line, ": connected") {
			break
		}
	}
	conn.Close()
}

// TestSlowAndVanishedClientsDoNotBlockThePipeline runs orders through the
// real in-process pipeline (auto mode: one POST runs the whole chain) while
// one client never reads its stream and another hangs up: every order
// ships promptly, a normal client gets every notification, and when the
// clients are gone their streams are too.
func TestSlowAndVanishedClientsDoNotBlockThePipeline(t *testing.T) {
	k := startKitchen(t, "auto")
	good := openStream(t, k.srv.URL, "", 0)
	slow := slowClient(t, k.srv.URL, "")
	k.waitStreams(t, 2)
	vanishingClient(t, k.srv.URL)
	k.waitStreams(t, 2) // the one that hung up is released

	const orders = 120 // 11 notifications each: far more than a stuck client can buffer
	start := time.Now()
	var slowest time.Duration
	for range orders {
		t0 := time.Now()
		k.placeOrder(t)
		slowest = max(slowest, time.Since(t0))
	}
	t.Logf("%d orders shipped in %v (slowest request %v); hub streams now %d", orders, time.Since(start), slowest, k.app.Hub.Streams())
	if slowest > 3*time.Second {
		t.Fatalf("an order took %v with a stuck client", slowest)
	}

	shipped := map[string]bool{}
	var last uint64
	for len(shipped) < orders {
		ev := good.next(t)
		if last != 0 && ev.ID != last+1 {
			t.Fatalf("the good client missed notifications: id %d after %d", ev.ID, last)
		}
		last = ev.ID
		if ev.Name == notify.OrderStatusChanged && ev.Data.Status == events.StatusShipped {
			shipped[ev.Data.OrderID] = true
		}
	}
	good.quiet(t, 50*time.Millisecond)

	slow.Close()
	good.close()
	k.waitStreams(t, 0)
}

// TestHubDropsAStuckStreamAndOthersGetEverything pins the drop itself at
// the HTTP level: a real hub with a short replay buffer behind the
// real API. (Only the hub and the stream are under test here, so the API
// has no App or Store; the notifications endpoint uses neither.)
func TestHubDropsAStuckStreamAndOthersGetEverything(t *testing.T) {
	hub := notify.NewHub(64)
	api := httpapi.New(nil, nil, hub, metrics.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	// Each notification goes out at once: the stuck stream fills its
	// socket in a few hundred steps instead of waiting for batches.
	api.SSEBatch = 0
	srv := httptest.NewServer(api)
	defer srv.Close()
	defer srv.CloseClientConnections()
	waitSubs := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for hub.Streams() != n {
			if time.Now().After(deadline) {
				t.Fatalf("hub has %d streams, want %d", hub.Streams(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	good := openStream(t, srv.URL, "?station=packaging", 0)
	slow := slowClient(t, srv.URL, "?station=packaging")
	waitSubs(2)

	// Big notifications (50 items), handed out in step with the good client,
	// until the stuck one has been dropped.
	items := make([]events.Item, 50)
	for i := range items {
		items[i] = events.Item{Flavour: "red-velvet", Size: "XL", Quantity: 1000}
	}
	var sent int
	var slowest time.Duration
	for hub.Streams() == 2 {
		if sent == 20000 {
			t.Fatal("the stuck client was never dropped")
		}
		u := events.OrderUpdate{OrderID: fmt.Sprintf("o-%d", sent), CustomerID: "alice", Status: events.StatusDecorated,
			Previous: events.StatusBaked, By: "dora", Items: items}
		t0 := time.Now()
		hub.Notify(context.Background(), u)
		slowest = max(slowest, time.Since(t0))
		sent++
		for _, want := range []string{"InformNewOrderToPackage/decorated", "OrderStatusChanged/decorated"} {
			if got := good.next(t); got.String() != want || got.Data.OrderID != u.OrderID {
				t.Fatalf("good client got %v for %s, want %s for %s", got, got.Data.OrderID, want, u.OrderID)
			}
		}
	}
	t.Logf("stuck client dropped after %d orders; slowest Notify %v", sent, slowest)
	if slowest > time.Second {
		t.Fatalf("Notify took %v", slowest)
	}

	// The good one goes on.
	hub.Notify(context.Background(), events.OrderUpdate{OrderID: "o-after", Status: events.StatusDecorated, Previous: events.StatusBaked})
	if got := good.next(t); got.Data.OrderID != "o-after" {
		t.Fatalf("after the drop the good client got %v", got)
	}

	// The stuck stream's handler ends once its connection does.
	slow.Close()
	good.close()
	waitSubs(0)
	done := make(chan struct{})
	go func() { srv.CloseClientConnections(); srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a stream handler is still running")
	}
}
