// Package pipeline_test holds the proof of the README's promise that a
// kitchen station is one row of events.Pipeline: it adds a glazing station
// between the baker and the decorator by that one row, builds the app on
// it, and follows orders through glazing, in the manual kitchen (its REST
// route, its role, its notification, its board in the UI's config, its
// place in the state machine) and the automatic one.
package pipeline_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	function "github.com/cupcake-factory/cupcake-factory"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/auth"
	"github.com/cupcake-factory/cupcake-factory/infra/config"
	"github.com/cupcake-factory/cupcake-factory/infra/httpapi"
)

// glazing is the one row.
var glazing = events.Step{Function: "glazed", Takes: "com.cupcakes.order.glazed", Topic: "readytoglaze",
	Records: "glazed", Station: "glazer", Inform: "InformNewOrderToGlaze", Route: "glaze"}

func TestMain(m *testing.M) {
	i := slices.IndexFunc(events.Pipeline, func(s events.Step) bool { return s.Records == events.StatusBaked })
	events.Pipeline = slices.Insert(slices.Clone(events.Pipeline), i+1, glazing)
	os.Exit(m.Run())
}

const (
	shopToken  = "shop-token-for-the-glazing-test"
	staffToken = "staff-token-for-the-glazing-test"
)

// kitchen is the app built on the pipeline with glazing, behind its HTTP
// API with tokens on, as cmd/cupcake-factory serves it.
type kitchen struct {
	t   *testing.T
	srv *httptest.Server
}

func open(t *testing.T, mode string) *kitchen {
	t.Helper()
	names := events.FunctionNames()
	if !slices.Contains(names, glazing.Function) {
		t.Fatalf("functions %v: glazing is not among them", names)
	}
	t.Setenv("DATA_DIR", t.TempDir())
	t.Setenv("MONGODB_URI", "")
	t.Setenv("KAFKA_BROKERS", "")
	t.Setenv("FUNCTIONS", strings.Join(names, ","))
	t.Setenv("KITCHEN_MODE", mode)
	t.Setenv("SEED_DEMO", "true")
	t.Setenv("AUTH_TOKENS", "shop:"+shopToken+",staff:"+staffToken)
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := function.Open(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Close(context.Background()) })
	authn, err := auth.New(cfg.AuthOptions(), log)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(app, app.Store, app.Hub, app.Metrics, log)
	api.KitchenMode = cfg.KitchenMode
	api.Auth = authn
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &kitchen{t: t, srv: srv}
}

// do sends a request with a token and returns the status and the JSON body.
func (k *kitchen) do(method, path, token, body string) (int, map[string]any) {
	k.t.Helper()
	req, err := http.NewRequest(method, k.srv.URL+path, strings.NewReader(body))
	if err != nil {
		k.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := k.srv.Client().Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func (k *kitchen) placeOrder(id string) {
	k.t.Helper()
	body := `{"orderId":"` + id + `","customerId":"alice","items":[{"flavour":"lemon","size":"M","quantity":2}]}`
	if status, out := k.do("POST", "/api/v1/order", shopToken, body); status != http.StatusAccepted {
		k.t.Fatalf("POST /api/v1/order = %d %v", status, out)
	}
}

// waitFor polls the order until it is in status.
func (k *kitchen) waitFor(id, status string) map[string]any {
	k.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, o := k.do("GET", "/api/v1/order/"+id, staffToken, "")
		if code == http.StatusOK && o["status"] == status {
			return o
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("order %s: %d %v; want it %s", id, code, o, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func history(o map[string]any) []string {
	var out []string
	for _, s := range o["history"].([]any) {
		out = append(out, s.(map[string]any)["status"].(string))
	}
	return out
}

// step reports a kitchen step over REST as staff.
func (k *kitchen) step(route, id string) (int, map[string]any) {
	k.t.Helper()
	return k.do("POST", "/api/v1/order/"+route, staffToken, `{"orderId":"`+id+`","by":"maria"}`)
}

func TestAStationAddedByOneRowIsAStationEverywhere(t *testing.T) {
	k := open(t, config.KitchenManual)

	// Its board: the UI's config lists it after the baker, waiting on baked orders.
	code, cfg := k.do("GET", "/api/v1/config", "", "")
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/config = %d", code)
	}
	var boards []string
	for _, s := range cfg["stations"].([]any) {
		s := s.(map[string]any)
		boards = append(boards, s["name"].(string)+"<"+s["queue"].(string)+">"+s["route"].(string))
	}
	if want := []string{"mixer<approved>mix", "baker<mixed>bake", "glazer<baked>glaze", "decorator<glazed>decorate", "packaging<decorated>box"}; !slices.Equal(boards, want) {
		t.Errorf("the UI's boards %v, want %v", boards, want)
	}
	if statuses, _ := json.Marshal(cfg["statuses"]); !strings.Contains(string(statuses), `"baked","glazed","decorated"`) {
		t.Errorf("the UI's states %s: glazed is not between baked and decorated", statuses)
	}

	// Its notification: the glazer's stream hears of the order once it is baked.
	stream := k.listen("glazer")

	k.placeOrder("o-glaze")
	k.waitFor("o-glaze", events.StatusApproved)
	for _, route := range []string{"mix", "bake"} {
		if code, out := k.step(route, "o-glaze"); code/100 != 2 {
			t.Fatalf("POST /api/v1/order/%s = %d %v", route, code, out)
		}
	}
	if got := stream.next(t); got != "InformNewOrderToGlaze o-glaze baked" {
		t.Errorf("the glazer's stream said %q, want InformNewOrderToGlaze o-glaze baked", got)
	}

	// Its place in the state machine: a baked order cannot be decorated
	// before it is glazed; the list of glazed orders is a valid query.
	if code, out := k.step("decorate", "o-glaze"); code != http.StatusUnprocessableEntity && code != http.StatusConflict {
		t.Errorf("decorating an unglazed order = %d %v, want it refused", code, out)
	}
	// Its role: a shop may not glaze; staff may.
	if code, _ := k.do("POST", "/api/v1/order/glaze", shopToken, `{"orderId":"o-glaze","by":"maria"}`); code != http.StatusForbidden {
		t.Errorf("glazing with the shop's token = %d, want 403", code)
	}
	if code, out := k.step("glaze", "o-glaze"); code/100 != 2 {
		t.Fatalf("POST /api/v1/order/glaze = %d %v", code, out)
	}
	if code, out := k.do("GET", "/api/v1/orders?status=glazed", staffToken, ""); code != http.StatusOK || out["count"] != float64(1) {
		t.Errorf("GET /api/v1/orders?status=glazed = %d %v, want the one order", code, out)
	}
	if code, out := k.step("glaze", "o-glaze"); code/100 == 2 {
		// The same report again is a new event (a new id): glazing twice is refused.
		t.Errorf("glazing a glazed order again = %d %v, want it refused", code, out)
	}
	for _, route := range []string{"decorate", "box"} {
		if code, out := k.step(route, "o-glaze"); code/100 != 2 {
			t.Fatalf("POST /api/v1/order/%s = %d %v", route, code, out)
		}
	}
	o := k.waitFor("o-glaze", events.StatusShipped)
	if want := []string{"created", "approved", "mixed", "baked", "glazed", "decorated", "packaged", "shipped"}; !slices.Equal(history(o), want) {
		t.Errorf("history %v, want %v", history(o), want)
	}

	// Its event type on POST /: staff may report it as a CloudEvent too.
	k.placeOrder("o-glaze-ce")
	k.waitFor("o-glaze-ce", events.StatusApproved)
	for _, route := range []string{"mix", "bake"} {
		if code, out := k.step(route, "o-glaze-ce"); code/100 != 2 {
			t.Fatalf("POST /api/v1/order/%s = %d %v", route, code, out)
		}
	}
	if code := k.postEvent(shopToken, glazing.Takes, "o-glaze-ce"); code != http.StatusForbidden {
		t.Errorf("a glazed CloudEvent with the shop's token = %d, want 403", code)
	}
	if code := k.postEvent(staffToken, glazing.Takes, "o-glaze-ce"); code/100 != 2 {
		t.Errorf("a glazed CloudEvent with staff's token = %d, want 2xx", code)
	}
	k.waitFor("o-glaze-ce", "glazed")
}

func TestTheAutomaticKitchenGlazesEveryOrder(t *testing.T) {
	k := open(t, config.KitchenAuto)
	k.placeOrder("o-auto")
	o := k.waitFor("o-auto", events.StatusShipped)
	if want := []string{"created", "approved", "mixed", "baked", "glazed", "decorated", "packaged", "shipped"}; !slices.Equal(history(o), want) {
		t.Errorf("history %v, want %v", history(o), want)
	}
	for _, s := range o["history"].([]any) {
		if s := s.(map[string]any); s["status"] == "glazed" && s["by"] != "auto-glazer" {
			t.Errorf("glazed by %v, want auto-glazer", s["by"])
		}
	}
}

func (k *kitchen) postEvent(token, typ, orderID string) int {
	k.t.Helper()
	req, err := http.NewRequest("POST", k.srv.URL+"/", strings.NewReader(`{"orderId":"`+orderID+`","by":"maria"}`))
	if err != nil {
		k.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", "glaze-"+orderID+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	req.Header.Set("Ce-Source", "tablet/glazer")
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Ce-Subject", orderID)
	res, err := k.srv.Client().Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// stream is a station's live notifications, read as a browser would.
type stream struct{ lines chan string }

func (k *kitchen) listen(station string) *stream {
	k.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	k.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", k.srv.URL+"/api/v1/notifications?station="+station, nil)
	if err != nil {
		k.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+staffToken)
	req.Header.Set("Accept", "text/event-stream")
	res, err := k.srv.Client().Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		k.t.Fatalf("GET /api/v1/notifications?station=%s = %d", station, res.StatusCode)
	}
	s := &stream{lines: make(chan string, 64)}
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		name := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && name != "OrderStatusChanged":
				var d struct{ OrderID, Status string }
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d)
				s.lines <- name + " " + d.OrderID + " " + d.Status
			}
		}
	}()
	return s
}

// next returns the next station notification (not a status change).
func (s *stream) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-s.lines:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no notification on the stream within 10 s")
		return ""
	}
}
