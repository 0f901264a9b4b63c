package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/notify"
)

// lifecycle is one order's whole life through the kitchen, as the functions
// tell the hub about it.
var lifecycle = []struct{ status, previous, by string }{
	{events.StatusCreated, "", "alice"},
	{events.StatusApproved, events.StatusCreated, "credit-validated"},
	{events.StatusMixed, events.StatusApproved, "mia"},
	{events.StatusBaked, events.StatusMixed, "ben"},
	{events.StatusDecorated, events.StatusBaked, "dora"},
	{events.StatusPackaged, events.StatusDecorated, "pat"},
	{events.StatusShipped, events.StatusPackaged, "pat"},
}

func change(id, status, previous, by string) events.OrderUpdate {
	return events.OrderUpdate{
		OrderID: id, CustomerID: "alice", Status: status, Previous: previous, By: by, Amount: 1200,
		Items: []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}},
		At:    time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC),
	}
}

func runLifecycle(h *notify.Hub, id string) {
	for _, s := range lifecycle {
		h.Notify(context.Background(), change(id, s.status, s.previous, s.by))
	}
}

// drain takes what is waiting on the subscription now, as "Name/status".
func drain(t *testing.T, s *notify.Subscription) []string {
	t.Helper()
	var got []string
	for {
		select {
		case n, ok := <-s.C:
			if !ok {
				return got
			}
			got = append(got, n.Name+"/"+n.Data.Status)
		default:
			return got
		}
	}
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

func TestNotifyNamesEachStateChange(t *testing.T) {
	tests := []struct {
		status, previous string
		want             []string
	}{
		{events.StatusCreated, "", []string{"OrderStatusChanged/created"}},
		{events.StatusApproved, events.StatusCreated, []string{"InformNewOrderToMix/approved", "OrderStatusChanged/approved"}},
		{events.StatusMixed, events.StatusApproved, []string{"InformNewOrderToBake/mixed", "OrderStatusChanged/mixed"}},
		{events.StatusBaked, events.StatusMixed, []string{"InformNewOrderToDecorate/baked", "OrderStatusChanged/baked"}},
		{events.StatusDecorated, events.StatusBaked, []string{"InformNewOrderToPackage/decorated", "OrderStatusChanged/decorated"}},
		{events.StatusPackaged, events.StatusDecorated, []string{"OrderStatusChanged/packaged"}},
		{events.StatusShipped, events.StatusPackaged, []string{"OrderStatusChanged/shipped"}},
		{events.StatusCancelled, events.StatusCreated, []string{"OrderStatusChanged/cancelled"}},
		{events.StatusFailed, events.StatusBaked, []string{"OrderStatusChanged/failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			h := notify.NewHub(16, 16)
			s := h.Subscribe("", 0)
			defer h.Unsubscribe(s)
			h.Notify(context.Background(), change("o-1", tt.status, tt.previous, "someone"))
			equal(t, drain(t, s), tt.want)
		})
	}
}

// Publish takes the status-changed events the functions emit (in-process
// or read from the updates topic) and tells the subscribers as Notify does;
// other events are not for the hub.
func TestPublishTellsTheSubscribersOfAStatusChangedEvent(t *testing.T) {
	event := func(t *testing.T, typ string, data any) cloudevents.Event {
		e, err := events.New(typ, "test", "o-1", data)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	tests := []struct {
		name    string
		event   func(t *testing.T) cloudevents.Event
		wantErr bool
		want    []string
	}{
		{"status changed", func(t *testing.T) cloudevents.Event {
			return event(t, events.TypeStatusChanged, change("o-1", events.StatusMixed, events.StatusApproved, "mia"))
		}, false, []string{"InformNewOrderToBake/mixed", "OrderStatusChanged/mixed"}},
		{"shipped: not for the hub", func(t *testing.T) cloudevents.Event {
			return event(t, events.TypeShipped, change("o-1", events.StatusShipped, events.StatusPackaged, "pat"))
		}, false, nil},
		{"a kitchen step: not for the hub", func(t *testing.T) cloudevents.Event {
			return event(t, events.TypeMixed, events.KitchenStep{OrderID: "o-1", By: "mia"})
		}, false, nil},
		{"undecodable data", func(t *testing.T) cloudevents.Event {
			e := event(t, events.TypeStatusChanged, nil)
			_ = e.SetData(cloudevents.ApplicationJSON, []byte(`{"orderId": 7`))
			return e
		}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := notify.NewHub(16, 16)
			s := h.Subscribe("", 0)
			defer h.Unsubscribe(s)
			if err := h.Publish(context.Background(), tt.event(t)); (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			equal(t, drain(t, s), tt.want)
		})
	}
}

func TestStationsAndTheirQueuesComeFromThePipeline(t *testing.T) {
	want := []string{notify.StationMixer, notify.StationBaker, notify.StationDecorator, notify.StationPackaging}
	if !slices.Equal(notify.Stations, want) {
		t.Fatalf("Stations = %v, want %v", notify.Stations, want)
	}
	queues := map[string]string{
		notify.StationMixer: events.StatusApproved, notify.StationBaker: events.StatusMixed,
		notify.StationDecorator: events.StatusBaked, notify.StationPackaging: events.StatusDecorated,
	}
	for station, want := range queues {
		if got, ok := notify.QueueStatus(station); !ok || got != want {
			t.Errorf("QueueStatus(%s) = %q, %v; want %q", station, got, ok, want)
		}
	}
	if got, ok := notify.QueueStatus("dishwasher"); ok {
		t.Errorf("QueueStatus(dishwasher) = %q, want none", got)
	}
}

func TestSubscribeFiltersByStation(t *testing.T) {
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
		// A station hears of work for it, and of orders entering and leaving its queue.
		{notify.StationMixer, []string{"InformNewOrderToMix/approved", "OrderStatusChanged/approved", "OrderStatusChanged/mixed"}},
		{notify.StationBaker, []string{"InformNewOrderToBake/mixed", "OrderStatusChanged/mixed", "OrderStatusChanged/baked"}},
		{notify.StationDecorator, []string{"InformNewOrderToDecorate/baked", "OrderStatusChanged/baked", "OrderStatusChanged/decorated"}},
		{notify.StationPackaging, []string{"InformNewOrderToPackage/decorated", "OrderStatusChanged/decorated", "OrderStatusChanged/packaged"}},
	}
	for _, tt := range tests {
		t.Run("station="+tt.station, func(t *testing.T) {
			h := notify.NewHub(64, 64)
			s := h.Subscribe(tt.station, 0)
			defer h.Unsubscribe(s)
			runLifecycle(h, "o-1")
			equal(t, drain(t, s), tt.want)
		})
	}
}

func TestFailedOrderLeavesTheQueueItWasIn(t *testing.T) {
	tests := []struct {
		station string
		want    []string
	}{
		{notify.StationBaker, []string{"OrderStatusChanged/failed"}},
		{notify.StationMixer, nil},
		{notify.StationDecorator, nil},
	}
	for _, tt := range tests {
		t.Run(tt.station, func(t *testing.T) {
			h := notify.NewHub(16, 16)
			s := h.Subscribe(tt.station, 0)
			defer h.Unsubscribe(s)
			h.Notify(context.Background(), change("o-1", events.StatusFailed, events.StatusMixed, "ben"))
			equal(t, drain(t, s), tt.want)
		})
	}
}

func TestNotificationCarriesTheOrder(t *testing.T) {
	h := notify.NewHub(16, 16)
	s := h.Subscribe(notify.StationMixer, 0)
	defer h.Unsubscribe(s)
	c := change("o-7", events.StatusApproved, events.StatusCreated, "credit-validated")
	h.Notify(context.Background(), c)
	n := <-s.C
	p := n.Data
	if n.Name != notify.InformNewOrderToMix || n.Station != notify.StationMixer || n.ID == 0 {
		t.Fatalf("notification = %+v", n)
	}
	if p.OrderID != "o-7" || p.CustomerID != "alice" || p.Status != "approved" || p.Previous != "created" ||
		p.By != "credit-validated" || p.Amount != 1200 || len(p.Items) != 1 || !p.At.Equal(c.At) {
		t.Fatalf("payload = %+v", p)
	}
}

func TestSubscribeReplaysAfterLastID(t *testing.T) {
	tests := []struct {
		name    string
		replay  int
		station string
		lastID  uint64
		want    []string
	}{
		{"nothing without an id", 64, "", 0, nil},
		{"everything after the id", 64, "", 8, []string{"OrderStatusChanged/decorated", "OrderStatusChanged/packaged", "OrderStatusChanged/shipped"}},
		{"only the station's", 64, notify.StationBaker, 2, []string{"InformNewOrderToBake/mixed", "OrderStatusChanged/mixed", "OrderStatusChanged/baked"}},
		{"the id is the newest", 64, "", 11, nil},
		{"older than the buffer keeps what is left", 2, "", 1, []string{"OrderStatusChanged/packaged", "OrderStatusChanged/shipped"}},
		{"an id from a restarted server", 64, "", 1000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := notify.NewHub(tt.replay, 16)
			runLifecycle(h, "o-1") // ids 1..11
			s := h.Subscribe(tt.station, tt.lastID)
			defer h.Unsubscribe(s)
			equal(t, drain(t, s), tt.want)
			// Live ones follow the replayed ones.
			h.Notify(context.Background(), change("o-2", events.StatusApproved, events.StatusCreated, "cv"))
			got := drain(t, s)
			if tt.station == "" && fmt.Sprint(got) != "[InformNewOrderToMix/approved OrderStatusChanged/approved]" {
				t.Fatalf("live after replay: %v", got)
			}
		})
	}
}

func TestIDsIncreaseAcrossSubscribers(t *testing.T) {
	h := notify.NewHub(64, 64)
	all := h.Subscribe("", 0)
	mixer := h.Subscribe(notify.StationMixer, 0)
	defer h.Unsubscribe(all)
	defer h.Unsubscribe(mixer)
	runLifecycle(h, "o-1")
	for _, s := range []*notify.Subscription{all, mixer} {
		var last uint64
		for len(s.C) > 0 {
			n := <-s.C
			if n.ID <= last {
				t.Fatalf("id %d after %d", n.ID, last)
			}
			last = n.ID
		}
	}
}

// A subscriber that never reads is dropped when its buffer is full: Notify
// never waits for it, and everyone else still gets everything.
func TestSlowSubscriberIsDroppedWithoutBlockingNotify(t *testing.T) {
	const buffer, orders = 4, 200
	h := notify.NewHub(16, buffer)
	slow := h.Subscribe("", 0)

	fast := h.Subscribe("", 0)
	var got []notify.Notification
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := range fast.C {
			got = append(got, n)
		}
	}()

	var worst time.Duration
	for i := range orders {
		// Hand over in step with the reader, so that only the slow one lags.
		for len(fast.C) > 0 {
			time.Sleep(10 * time.Microsecond)
		}
		start := time.Now()
		h.Notify(context.Background(), change(fmt.Sprintf("o-%d", i), events.StatusShipped, events.StatusPackaged, "pat"))
		worst = max(worst, time.Since(start))
	}
	if worst > time.Second {
		t.Fatalf("Notify took up to %v with a stuck subscriber", worst)
	}
	if n := h.Subscribers(); n != 1 {
		t.Fatalf("Subscribers() = %d, want 1 (the slow one dropped)", n)
	}
	// The slow one gets what was buffered, then its channel is closed.
	var slowGot int
	for range slow.C {
		slowGot++
	}
	if slowGot != buffer {
		t.Fatalf("slow subscriber got %d before being dropped, want %d", slowGot, buffer)
	}
	h.Unsubscribe(slow) // after a drop: harmless

	h.Unsubscribe(fast)
	wg.Wait()
	if len(got) != orders {
		t.Fatalf("the other subscriber got %d notifications, want %d", len(got), orders)
	}
	for i, n := range got {
		if want := fmt.Sprintf("o-%d", i); n.Data.OrderID != want {
			t.Fatalf("notification %d is for %s, want %s", i, n.Data.OrderID, want)
		}
	}
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("Subscribers() = %d after everyone left, want 0", n)
	}
}

func TestUnsubscribeReleasesAndIsIdempotent(t *testing.T) {
	h := notify.NewHub(4, 4)
	subs := []*notify.Subscription{h.Subscribe("", 0), h.Subscribe(notify.StationMixer, 0), h.Subscribe(notify.StationPackaging, 0)}
	if n := h.Subscribers(); n != 3 {
		t.Fatalf("Subscribers() = %d, want 3", n)
	}
	for _, s := range subs {
		h.Unsubscribe(s)
		h.Unsubscribe(s)
		if _, ok := <-s.C; ok {
			t.Fatal("channel still open after Unsubscribe")
		}
	}
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("Subscribers() = %d, want 0", n)
	}
	runLifecycle(h, "o-1") // nobody listening: fine
}

func TestConcurrentNotifyAndSubscribe(t *testing.T) {
	h := notify.NewHub(32, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				h.Notify(ctx, change(fmt.Sprintf("o-%d-%d", w, i), events.StatusApproved, events.StatusCreated, "cv"))
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				s := h.Subscribe(notify.Stations[i%len(notify.Stations)], uint64(i))
				for len(s.C) > 0 {
					<-s.C
				}
				h.Unsubscribe(s)
			}
		}()
	}
	wg.Wait()
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("Subscribers() = %d, want 0", n)
	}
}

// frames takes what a stream has now, failing if it is not ready.
func frames(t *testing.T, s *notify.Stream) []*notify.Frame {
	t.Helper()
	select {
	case <-s.Ready():
	case <-time.After(time.Second):
		t.Fatal("stream not ready")
	}
	f, err := s.Frames(nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func names(fs []*notify.Frame) []string {
	var out []string
	for _, f := range fs {
		name := strings.SplitN(strings.SplitN(string(f.Bytes), "event: ", 2)[1], "\n", 2)[0]
		out = append(out, fmt.Sprintf("%d:%s", f.ID, name))
	}
	return out
}

func TestStreamsShareOneEncodingOfEachNotification(t *testing.T) {
	h := notify.NewHub(64, 64)
	a, err := h.OpenStream("", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.OpenStream("", 0, 10)
	defer h.CloseStream(a)
	defer h.CloseStream(b)
	select {
	case <-a.Ready():
		t.Fatal("a stream is ready before anything happened")
	default:
	}
	h.Notify(context.Background(), change("o-7", events.StatusApproved, events.StatusCreated, "credit-validated"))
	fa, fb := frames(t, a), frames(t, b)
	if len(fa) != 2 || len(fb) != 2 {
		t.Fatalf("got %d and %d frames, want 2 each", len(fa), len(fb))
	}
	for i, want := range []string{notify.InformNewOrderToMix, notify.OrderStatusChanged} {
		if fa[i] != fb[i] {
			t.Fatal("each stream got its own encoding")
		}
		msg := string(fa[i].Bytes)
		head := fmt.Sprintf("id: %d\nevent: %s\ndata: ", fa[i].ID, want)
		if !strings.HasPrefix(msg, head) || !strings.HasSuffix(msg, "\n\n") || strings.Count(msg, "\n") != 4 {
			t.Fatalf("frame %q is not one SSE message %q…", msg, head)
		}
		var p notify.Payload
		if err := json.Unmarshal([]byte(strings.TrimSuffix(strings.TrimPrefix(msg, head), "\n\n")), &p); err != nil {
			t.Fatal(err)
		}
		if p.OrderID != "o-7" || p.Status != events.StatusApproved || p.Previous != events.StatusCreated {
			t.Errorf("data %+v", p)
		}
	}
	if f, _ := a.Frames(nil); len(f) != 0 {
		t.Errorf("frames handed out twice: %v", names(f))
	}
}

func TestStreamsAreCappedAndAClosedOneFreesItsPlace(t *testing.T) {
	h := notify.NewHub(4, 4)
	var open []*notify.Stream
	for range 3 {
		s, err := h.OpenStream("", 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}
	if _, err := h.OpenStream(notify.StationMixer, 0, 3); !errors.Is(err, notify.ErrTooManyStreams) {
		t.Fatalf("a fourth stream: %v, want ErrTooManyStreams", err)
	}
	if h.Subscribe("", 0) == nil || h.Streams() != 3 {
		t.Fatal("in-process subscriptions do not count against the cap")
	}
	h.CloseStream(open[0])
	h.CloseStream(open[0])
	if _, err := open[0].Frames(nil); !errors.Is(err, notify.ErrStreamClosed) {
		t.Errorf("frames of a closed stream: %v", err)
	}
	if _, err := h.OpenStream("", 0, 3); err != nil {
		t.Fatalf("after a close: %v", err)
	}
}

// A stream that stops reading holds nothing per notification; once what it
// has not sent has left the replay buffer, the hub drops it, and the others
// go on getting everything.
func TestAStreamThatFallsOutOfTheReplayIsDropped(t *testing.T) {
	const replay = 8
	h := notify.NewHub(replay, 4)
	slow, _ := h.OpenStream("", 0, 0)
	fast, _ := h.OpenStream("", 0, 0)
	got := 0
	for i := range 50 {
		h.Notify(context.Background(), change(fmt.Sprintf("o-%d", i), events.StatusShipped, events.StatusPackaged, "pat"))
		got += len(frames(t, fast))
		if i < replay-1 && h.Streams() != 2 {
			t.Fatalf("dropped after %d notifications, while its backlog was still in the buffer", i+1)
		}
	}
	if got != 50 {
		t.Errorf("the reading stream got %d, want 50", got)
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("the stuck stream was not dropped")
	}
	if _, err := slow.Frames(nil); !errors.Is(err, notify.ErrStreamClosed) || h.Streams() != 1 {
		t.Errorf("dropped stream: %v, %d streams left (want 1)", err, h.Streams())
	}
	h.CloseStream(fast)
}

func TestStreamReplaysAfterLastIDForItsStation(t *testing.T) {
	tests := []struct {
		name    string
		replay  int
		station string
		lastID  uint64
		want    []string
	}{
		{"only new ones without an id", 64, "", 0, nil},
		{"the baker's after id 2", 64, notify.StationBaker, 2, []string{"4:InformNewOrderToBake", "5:OrderStatusChanged", "7:OrderStatusChanged"}},
		{"everything after id 8", 64, "", 8, []string{"9:OrderStatusChanged", "10:OrderStatusChanged", "11:OrderStatusChanged"}},
		{"what is left of an old id", 2, "", 1, []string{"10:OrderStatusChanged", "11:OrderStatusChanged"}},
		{"an id from a restarted server", 64, "", 1000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := notify.NewHub(tt.replay, 16)
			runLifecycle(h, "o-1") // ids 1..11
			s, err := h.OpenStream(tt.station, tt.lastID, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer h.CloseStream(s)
			var got []string
			select {
			case <-s.Ready():
				f, _ := s.Frames(nil)
				got = names(f)
			default:
			}
			equal(t, got, tt.want)
			// Live ones follow.
			h.Notify(context.Background(), change("o-2", events.StatusMixed, events.StatusApproved, "mia"))
			if live := names(frames(t, s)); len(live) == 0 || !strings.HasPrefix(live[0], "12:") && tt.station == "" {
				t.Errorf("live after replay: %v", live)
			}
		})
	}
}
