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

// The contract's station and notification names, which the pipeline's
// rows must give.
const (
	stationMixer     = "mixer"
	stationBaker     = "baker"
	stationDecorator = "decorator"
	stationPackaging = "packaging"
	informMix        = "InformNewOrderToMix"
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

// open opens a stream for station after lastID, closed when the test ends.
func open(t *testing.T, h *notify.Hub, station string, lastID uint64) *notify.Stream {
	t.Helper()
	s, err := h.OpenStream(station, lastID, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.CloseStream(s) })
	return s
}

// drain takes what is waiting on the stream now, as "Name/status".
func drain(t *testing.T, s *notify.Stream) []string {
	t.Helper()
	ns, err := s.Notifications(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range ns {
		got = append(got, n.Name+"/"+n.Data.Status)
	}
	return got
}

// readers are the two ways to take what is waiting on a stream, each giving
// it as "id:Name/status": in-process (Notifications) and as the SSE
// endpoint does (Frames, decoded back). They must agree.
var readers = []struct {
	name string
	read func(*notify.Stream) ([]string, error)
}{
	{"Notifications", func(s *notify.Stream) ([]string, error) {
		ns, err := s.Notifications(nil)
		var out []string
		for _, n := range ns {
			out = append(out, fmt.Sprintf("%d:%s/%s", n.ID, n.Name, n.Data.Status))
		}
		return out, err
	}},
	{"Frames", func(s *notify.Stream) ([]string, error) {
		fs, err := s.Frames(nil)
		var out []string
		for _, f := range fs {
			out = append(out, describe(f))
		}
		return out, err
	}},
}

// describe decodes an SSE frame back to "id:Name/status".
func describe(f *notify.Frame) string {
	var id, name, data string
	for _, line := range strings.Split(strings.TrimSuffix(string(f.Bytes), "\n\n"), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "id":
			id = v
		case "event":
			name = v
		case "data":
			data = v
		}
	}
	var p notify.Payload
	if err := json.Unmarshal([]byte(data), &p); err != nil || id != fmt.Sprint(f.ID) {
		return fmt.Sprintf("malformed frame %d %q", f.ID, f.Bytes)
	}
	return fmt.Sprintf("%s:%s/%s", id, name, p.Status)
}

// withoutIDs drops the "id:" of each of got.
func withoutIDs(got []string) []string {
	var out []string
	for _, g := range got {
		_, rest, _ := strings.Cut(g, ":")
		out = append(out, rest)
	}
	return out
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
			h := notify.NewHub(16)
			s := open(t, h, "", 0)
			h.Notify(context.Background(), change("o-1", tt.status, tt.previous, "someone"))
			equal(t, drain(t, s), tt.want)
		})
	}
}

// Publish takes the status-changed events the functions emit (in-process
// or read from the updates topic) and tells the streams as Notify does;
// other events are not for the hub.
func TestPublishTellsTheStreamsOfAStatusChangedEvent(t *testing.T) {
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
			h := notify.NewHub(16)
			s := open(t, h, "", 0)
			if err := h.Publish(context.Background(), tt.event(t)); (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			equal(t, drain(t, s), tt.want)
		})
	}
}

func TestStationsAndTheirQueuesComeFromThePipeline(t *testing.T) {
	want := []string{stationMixer, stationBaker, stationDecorator, stationPackaging}
	if !slices.Equal(notify.Stations(), want) {
		t.Fatalf("Stations = %v, want %v", notify.Stations(), want)
	}
	queues := map[string]string{
		stationMixer: events.StatusApproved, stationBaker: events.StatusMixed,
		stationDecorator: events.StatusBaked, stationPackaging: events.StatusDecorated,
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

// Both readers of a stream see only what is for its station.
func TestStreamFiltersByStation(t *testing.T) {
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
		{stationMixer, []string{"InformNewOrderToMix/approved", "OrderStatusChanged/approved", "OrderStatusChanged/mixed"}},
		{stationBaker, []string{"InformNewOrderToBake/mixed", "OrderStatusChanged/mixed", "OrderStatusChanged/baked"}},
		{stationDecorator, []string{"InformNewOrderToDecorate/baked", "OrderStatusChanged/baked", "OrderStatusChanged/decorated"}},
		{stationPackaging, []string{"InformNewOrderToPackage/decorated", "OrderStatusChanged/decorated", "OrderStatusChanged/packaged"}},
	}
	for _, tt := range tests {
		for _, r := range readers {
			t.Run("station="+tt.station+"/"+r.name, func(t *testing.T) {
				h := notify.NewHub(64)
				s := open(t, h, tt.station, 0)
				runLifecycle(h, "o-1")
				got, err := r.read(s)
				if err != nil {
					t.Fatal(err)
				}
				equal(t, withoutIDs(got), tt.want)
			})
		}
	}
}

func TestFailedOrderLeavesTheQueueItWasIn(t *testing.T) {
	tests := []struct {
		station string
		want    []string
	}{
		{stationBaker, []string{"OrderStatusChanged/failed"}},
		{stationMixer, nil},
		{stationDecorator, nil},
	}
	for _, tt := range tests {
		t.Run(tt.station, func(t *testing.T) {
			h := notify.NewHub(16)
			s := open(t, h, tt.station, 0)
			h.Notify(context.Background(), change("o-1", events.StatusFailed, events.StatusMixed, "ben"))
			equal(t, drain(t, s), tt.want)
		})
	}
}

func TestNotificationCarriesTheOrder(t *testing.T) {
	h := notify.NewHub(16)
	s := open(t, h, stationMixer, 0)
	c := change("o-7", events.StatusApproved, events.StatusCreated, "credit-validated")
	h.Notify(context.Background(), c)
	ns, err := s.Notifications(nil)
	if err != nil || len(ns) == 0 {
		t.Fatalf("got %d notifications, %v", len(ns), err)
	}
	n := ns[0]
	p := n.Data
	if n.Name != informMix || n.Station != stationMixer || n.ID == 0 {
		t.Fatalf("notification = %+v", n)
	}
	if p.OrderID != "o-7" || p.CustomerID != "alice" || p.Status != "approved" || p.Previous != "created" ||
		p.By != "credit-validated" || p.Amount != 1200 || len(p.Items) != 1 || !p.At.Equal(c.At) {
		t.Fatalf("payload = %+v", p)
	}
}

// A stream opened with the id of the last notification a client saw begins
// with what came after it that the replay buffer still holds, for its
// station, and goes on with the live ones; both readers agree.
func TestStreamReplaysAfterLastIDThenGoesLive(t *testing.T) {
	tests := []struct {
		name    string
		replay  int
		station string
		lastID  uint64
		want    []string
	}{
		{"nothing without an id", 64, "", 0, nil},
		{"everything after the id", 64, "", 8, []string{"9:OrderStatusChanged/decorated", "10:OrderStatusChanged/packaged", "11:OrderStatusChanged/shipped"}},
		{"only the station's", 64, stationBaker, 2, []string{"4:InformNewOrderToBake/mixed", "5:OrderStatusChanged/mixed", "7:OrderStatusChanged/baked"}},
		{"the id is the newest", 64, "", 11, nil},
		{"older than the buffer keeps what is left", 2, "", 1, []string{"10:OrderStatusChanged/packaged", "11:OrderStatusChanged/shipped"}},
		{"an id from a restarted server", 64, "", 1000, nil},
	}
	for _, tt := range tests {
		for _, r := range readers {
			t.Run(tt.name+"/"+r.name, func(t *testing.T) {
				h := notify.NewHub(tt.replay)
				runLifecycle(h, "o-1") // ids 1..11
				s := open(t, h, tt.station, tt.lastID)
				// In these cases a stream with nothing to replay starts at
				// the newest id, so it is ready exactly when there is some.
				select {
				case <-s.Ready():
					if len(tt.want) == 0 {
						t.Error("ready with nothing to replay")
					}
				default:
					if len(tt.want) > 0 {
						t.Error("not ready with notifications to replay")
					}
				}
				got, err := r.read(s)
				if err != nil {
					t.Fatal(err)
				}
				equal(t, got, tt.want)
				// Live ones follow the replayed ones (the baker hears of both).
				h.Notify(context.Background(), change("o-2", events.StatusMixed, events.StatusApproved, "mia"))
				<-s.Ready()
				live, err := r.read(s)
				if err != nil {
					t.Fatal(err)
				}
				equal(t, live, []string{"12:InformNewOrderToBake/mixed", "13:OrderStatusChanged/mixed"})
			})
		}
	}
}

// Ids are the hub's, not a stream's: every stream sees them increase, and
// the same notification has the same id on each.
func TestIDsIncreaseAcrossStreams(t *testing.T) {
	h := notify.NewHub(64)
	all := open(t, h, "", 0)
	mixer := open(t, h, stationMixer, 0)
	runLifecycle(h, "o-1")
	runLifecycle(h, "o-2")
	byID := map[uint64]string{}
	for _, s := range []*notify.Stream{all, mixer} {
		ns, err := s.Notifications(nil)
		if err != nil || len(ns) == 0 {
			t.Fatalf("got %d notifications, %v", len(ns), err)
		}
		var last uint64
		for _, n := range ns {
			if n.ID <= last {
				t.Fatalf("id %d after %d", n.ID, last)
			}
			last = n.ID
			what := n.Name + "/" + n.Data.OrderID + "/" + n.Data.Status
			if seen, ok := byID[n.ID]; ok && seen != what {
				t.Fatalf("id %d is %s on one stream and %s on another", n.ID, seen, what)
			}
			byID[n.ID] = what
		}
	}
}

func TestCloseStreamReleasesItAndIsIdempotent(t *testing.T) {
	h := notify.NewHub(4)
	var streams []*notify.Stream
	for _, station := range []string{"", stationMixer, stationPackaging} {
		s, err := h.OpenStream(station, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	if n := h.Streams(); n != 3 {
		t.Fatalf("Streams() = %d, want 3", n)
	}
	for _, s := range streams {
		h.CloseStream(s)
		h.CloseStream(s)
		select {
		case <-s.Done():
		default:
			t.Fatal("Done not closed after CloseStream")
		}
		select {
		case <-s.Ready():
		default:
			t.Fatal("a closed stream is not ready: its reader would wait forever")
		}
		for _, r := range readers {
			if _, err := r.read(s); !errors.Is(err, notify.ErrStreamClosed) {
				t.Errorf("%s of a closed stream: %v, want ErrStreamClosed", r.name, err)
			}
		}
	}
	if n := h.Streams(); n != 0 {
		t.Fatalf("Streams() = %d, want 0", n)
	}
	runLifecycle(h, "o-1") // nobody listening: fine
}

// Notify, and streams opening, reading and closing, all at once (run with
// -race): a reader never sees an id twice or out of order, a stream that is
// dropped under its reader says so with ErrStreamClosed, and every stream is
// released.
func TestConcurrentNotifyAndOpenCloseStream(t *testing.T) {
	const writers, perWriter = 4, 200
	h := notify.NewHub(32)
	ctx := context.Background()

	// One stream reads as it goes until it has everything or is dropped.
	steady, _ := h.OpenStream("", 0, 0)
	done := make(chan error)
	go func() {
		var buf []notify.Notification
		var last uint64
		for heard := 0; heard < writers*perWriter*2; heard += len(buf) {
			select {
			case <-steady.Ready():
			case <-time.After(5 * time.Second):
				done <- fmt.Errorf("waited 5s for news after %d notifications", heard)
				return
			}
			var err error
			if buf, err = steady.Notifications(buf[:0]); err != nil {
				if !errors.Is(err, notify.ErrStreamClosed) {
					done <- err
				}
				break // dropped as too slow: allowed here
			}
			for _, n := range buf {
				if n.ID <= last {
					done <- fmt.Errorf("id %d after %d", n.ID, last)
					return
				}
				last = n.ID
			}
		}
		close(done)
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				h.Notify(ctx, change(fmt.Sprintf("o-%d-%d", w, i), events.StatusApproved, events.StatusCreated, "cv"))
			}
		}()
	}
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				s, err := h.OpenStream(notify.Stations()[i%len(notify.Stations())], uint64(i), 0)
				if err != nil {
					t.Error(err)
					return
				}
				// A stream opened behind may be dropped under it: that is
				// ErrStreamClosed, never anything else.
				if _, err := readers[(r+i)%2].read(s); err != nil && !errors.Is(err, notify.ErrStreamClosed) {
					t.Error(err)
				}
				h.CloseStream(s)
			}
		}()
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Errorf("the steady stream: %v", err)
	}
	h.CloseStream(steady)
	if n := h.Streams(); n != 0 {
		t.Fatalf("Streams() = %d, want 0", n)
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

func TestStreamsShareOneEncodingOfEachNotification(t *testing.T) {
	h := notify.NewHub(64)
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
	for i, want := range []string{informMix, notify.OrderStatusChanged} {
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
	// The cursor is the stream's, whichever way it is read.
	for _, r := range readers {
		if got, _ := r.read(a); len(got) != 0 {
			t.Errorf("handed out twice by %s: %v", r.name, got)
		}
	}
}

func TestStreamsAreCappedAndAClosedOneFreesItsPlace(t *testing.T) {
	h := notify.NewHub(4)
	var open []*notify.Stream
	for range 3 {
		s, err := h.OpenStream("", 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}
	if _, err := h.OpenStream(stationMixer, 0, 3); !errors.Is(err, notify.ErrTooManyStreams) {
		t.Fatalf("a fourth stream: %v, want ErrTooManyStreams", err)
	}
	if s, err := h.OpenStream("", 0, 0); err != nil || h.Streams() != 4 {
		t.Fatalf("a stream opened without a cap: %v, %d streams (want 4)", err, h.Streams())
	} else {
		h.CloseStream(s)
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
// has not sent has left the replay buffer, the hub drops it (closing it
// afterwards is harmless), and the others go on getting everything, in
// order.
func TestAStreamThatFallsOutOfTheReplayIsDropped(t *testing.T) {
	const replay, orders = 8, 50
	h := notify.NewHub(replay)
	slow, _ := h.OpenStream("", 0, 0)
	fast, _ := h.OpenStream("", 0, 0)
	var got []string
	for i := range orders {
		h.Notify(context.Background(), change(fmt.Sprintf("o-%d", i), events.StatusShipped, events.StatusPackaged, "pat"))
		<-fast.Ready()
		ns, err := fast.Notifications(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			got = append(got, n.Data.OrderID)
		}
		if i < replay-1 && h.Streams() != 2 {
			t.Fatalf("dropped after %d notifications, while its backlog was still in the buffer", i+1)
		}
	}
	if len(got) != orders {
		t.Fatalf("the reading stream got %d, want %d", len(got), orders)
	}
	for i, id := range got {
		if want := fmt.Sprintf("o-%d", i); id != want {
			t.Fatalf("notification %d is for %s, want %s", i, id, want)
		}
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("the stuck stream was not dropped")
	}
	for _, r := range readers {
		if _, err := r.read(slow); !errors.Is(err, notify.ErrStreamClosed) {
			t.Errorf("%s of the dropped stream: %v, want ErrStreamClosed", r.name, err)
		}
	}
	h.CloseStream(slow) // after a drop: harmless
	if n := h.Streams(); n != 1 {
		t.Errorf("%d streams left, want 1", n)
	}
	h.CloseStream(fast)
	if n := h.Streams(); n != 0 {
		t.Errorf("%d streams left after everyone left, want 0", n)
	}
}
