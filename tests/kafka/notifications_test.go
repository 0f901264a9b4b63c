package kafka

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cupcake-factory/cupcake-factory/tests/e2e"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
)

// TestAnAPIOnlyProcessStreamsNotificationsMadeByTheFunctionProcesses runs
// the functions in one process and the API/UI in another (FUNCTIONS=none),
// as on Knative or docker-compose: the order is placed on the API, handled
// by the functions, and its kitchen notifications reach the API's browsers
// through the updates topic.
func TestAnAPIOnlyProcessStreamsNotificationsMadeByTheFunctionProcesses(t *testing.T) {
	addr := broker.Start(t, 2)
	startApp(t, addr, nil) // the six functions
	api := startApp(t, addr, map[string]string{"FUNCTIONS": "none", "ALLOW_PARTIAL_EMBEDDED_STORE": "true"})

	seen := watch(t, api.URL, func() {
		r := e2e.PostBinary(t, api, "n-1", "com.cupcakes.order.created", "o-n1", e2e.OrderData("o-n1", "alice", "vanilla", "M", 6))
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST / on the API = %d %s", r.Status, r.Body)
		}
	})
	for _, w := range []string{"InformNewOrderToMix", "InformNewOrderToBake", "InformNewOrderToDecorate", "InformNewOrderToPackage"} {
		if !seen[w] {
			t.Errorf("no %s on the API's stream (saw %v)", w, seen)
		}
	}
}

// TestAKnativeStyleFunctionAnswersOverHTTPAndTellsTheAPIOverKafka runs the
// functions as on Knative (KAFKA_CONSUME=false: the event comes over HTTP,
// the reply goes back in the response) and the API/UI in another process:
// the steps the functions record still reach the API's browsers, through
// status-changed notifications on orderupdates.
func TestAKnativeStyleFunctionAnswersOverHTTPAndTellsTheAPIOverKafka(t *testing.T) {
	addr := broker.Start(t, 2)
	fn := startApp(t, addr, map[string]string{"KAFKA_CONSUME": "false"})
	api := startApp(t, addr, map[string]string{"FUNCTIONS": "none", "ALLOW_PARTIAL_EMBEDDED_STORE": "true"})
	seen := watch(t, api.URL, func() {
		r := e2e.PostBinary(t, fn, "kn-1", "com.cupcakes.order.created", "o-kn1", e2e.OrderData("o-kn1", "alice", "lemon", "S", 2))
		if r.Status != http.StatusOK || r.Header.Get("ce-type") != "com.cupcakes.order.shipped" {
			t.Fatalf("POST / on the function = %d %q %s, want 200 with the reply", r.Status, r.Header.Get("ce-type"), r.Body)
		}
	})
	if !seen["InformNewOrderToMix"] || !seen["InformNewOrderToPackage"] {
		t.Errorf("the API's stream missed the kitchen steps: %v", seen)
	}
	// Nothing went through the work topics: the function was not consuming.
	if recs := broker.ReadAll(t, addr, "orderrequests", 0, time.Second); len(recs) != 0 {
		t.Errorf("%d records on orderrequests, want none", len(recs))
	}
}

// watch opens the notification stream of the API at url, runs act, and reads
// the stream until an OrderStatusChanged to shipped. It returns the event
// names seen.
func watch(t *testing.T, url string, act func()) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/notifications", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("notifications: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	// Each process reads the updates topic from the newest offsets it
	// fixed before reporting ready, so nothing published now is missed.
	act()
	var event string
	seen := map[string]bool{}
	for !seen["shipped"] {
		select {
		case l := <-lines:
			switch {
			case strings.HasPrefix(l, "event: "):
				event = strings.TrimPrefix(l, "event: ")
				seen[event] = true
			case strings.HasPrefix(l, "data: ") && event == "OrderStatusChanged" && strings.Contains(l, `"status":"shipped"`):
				seen["shipped"] = true
			}
		case <-ctx.Done():
			t.Fatalf("stream ended before shipped; saw %v", seen)
		}
	}
	return seen
}
