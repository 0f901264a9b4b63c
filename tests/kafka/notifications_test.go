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
	api := startApp(t, addr, map[string]string{"FUNCTIONS": "none"})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL+"/api/v1/notifications", nil)
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
	// Each process's notifications consumer starts at the newest offset:
	// wait until both have joined before the order is placed.
	waitGroups(t, addr, "cupcake-factory-notifications-", 2)

	r := e2e.PostBinary(t, api, "n-1", "com.cupcakes.order.created", "o-n1", e2e.OrderData("o-n1", "alice", "vanilla", "M", 6))
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST / on the API = %d %s", r.Status, r.Body)
	}
	want := []string{"InformNewOrderToMix", "InformNewOrderToBake", "InformNewOrderToDecorate", "InformNewOrderToPackage"}
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
	for _, w := range want {
		if !seen[w] {
			t.Errorf("no %s on the API's stream (saw %v)", w, seen)
		}
	}
}
