// Package notify tells the kitchen what happens, as it happens: a hub that
// turns order state changes into the contract's notifications
// (each station's InformNewOrderTo..., OrderStatusChanged) and fans them out to
// streams (the SSE endpoint, and in-process readers such as tests). A
// stream is a cursor into a short replay buffer; one too slow to keep up is
// dropped rather than allowed to hold up the pipeline, and reconnects with
// Last-Event-ID to get what it missed from that buffer.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// OrderStatusChanged is the notification every state change makes; a
// kitchen step's own (InformNewOrderTo...) is named by its row of
// events.Pipeline (Step.Inform).
const OrderStatusChanged = "OrderStatusChanged"

// Stations lists the stations in kitchen order, as ?station= names them
// (events.Pipeline).
func Stations() []string {
	var out []string
	for _, s := range events.Kitchen() {
		out = append(out, s.Station)
	}
	return out
}

// QueueStatus returns the order state that is station's queue: the state
// orders wait in for that station's step.
func QueueStatus(station string) (string, bool) {
	queue := events.StatusApproved
	for _, s := range events.Pipeline { // walked, not copied: streams ask per notification
		if s.Records == "" {
			continue
		}
		if s.Station == station {
			return queue, true
		}
		queue = s.Records
	}
	return "", false
}

// Notification is one message to the kitchen.
type Notification struct {
	ID      uint64  `json:"-"`
	Name    string  `json:"-"`
	Station string  `json:"-"` // the station it concerns; "" for everyone
	Data    Payload `json:"data"`
	frame   *Frame  // the same notification encoded once for every stream
}

// Payload is the JSON data of a notification.
type Payload struct {
	OrderID    string        `json:"orderId"`
	CustomerID string        `json:"customerId"`
	Status     string        `json:"status"`
	Previous   string        `json:"previous,omitempty"`
	By         string        `json:"by,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	Amount     int64         `json:"amount"`
	Items      []events.Item `json:"items"`
	At         time.Time     `json:"at"`
}

// Hub fans notifications out to streams.
type Hub struct {
	mu      sync.Mutex
	next    uint64
	streams map[*Stream]struct{}
	// signal is closed, and replaced, at each notification: one close wakes
	// every stream waiting for news.
	signal chan struct{}
	// replay holds the most recent notifications, by id: notification id
	// is at replay[id % len(replay)]. A ring: publishing never moves the
	// others.
	replay []Notification
}

// NewHub returns a hub remembering the last replay notifications (at least
// one): a stream that falls further behind than that is dropped.
func NewHub(replay int) *Hub {
	return &Hub{streams: map[*Stream]struct{}{}, signal: make(chan struct{}), replay: make([]Notification, max(replay, 1))}
}

// oldest is the id of the oldest notification the replay buffer holds (the
// next one's if it holds none).
func (h *Hub) oldest() uint64 {
	if size := uint64(len(h.replay)); h.next > size {
		return h.next - size + 1
	}
	return 1
}

// PublishAll is Publish for several events: the hub as the relay's
// publisher in one process.
func (h *Hub) PublishAll(ctx context.Context, es []cloudevents.Event) []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = h.Publish(ctx, e)
	}
	return errs
}

// Publish takes a status-changed event (the one notification the
// functions emit, in-process or from Kafka's updates topic) and tells the
// streams; other events are not for the hub.
func (h *Hub) Publish(ctx context.Context, e cloudevents.Event) error {
	if e.Type() != events.TypeStatusChanged {
		return nil
	}
	var u events.OrderUpdate
	if err := json.Unmarshal(e.Data(), &u); err != nil {
		return fmt.Errorf("decode %s event %s: %w", e.Type(), e.ID(), err)
	}
	h.Notify(ctx, u)
	return nil
}

// Notify turns a state change into notifications and sends them.
func (h *Hub) Notify(_ context.Context, u events.OrderUpdate) {
	p := Payload{
		OrderID: u.OrderID, CustomerID: u.CustomerID, Status: u.Status, Previous: u.Previous,
		By: u.By, Reason: u.Reason, Amount: u.Amount, Items: u.Items, At: u.At,
	}
	// Encoded once, for both notifications, before the lock is taken:
	// publishers do not queue behind each other's JSON.
	data := encodeData(p)
	if step, ok := events.WaitingFor(u.Status); ok {
		h.publish(Notification{Name: step.Inform, Station: step.Station, Data: p}, data)
	}
	h.publish(Notification{Name: OrderStatusChanged, Data: p}, data)
}

// publish stores n, whose data is encoded already, and wakes the streams.
func (h *Hub) publish(n Notification, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	n.ID = h.next
	n.frame = frame(n, data)
	h.replay[n.ID%uint64(len(h.replay))] = n
	if len(h.streams) == 0 {
		return
	}
	// Streams read the replay buffer themselves; one that has fallen so far
	// behind that what it has not sent is no longer there is too slow:
	// drop it; it will reconnect and replay.
	for s := range h.streams {
		if h.next-s.cursor > uint64(len(h.replay)) {
			h.closeStreamLocked(s)
		}
	}
	close(h.signal)
	h.signal = make(chan struct{})
}

// wants reports whether a notification is for a stream of station ("" for
// all): a station gets its own Inform* notifications and the status changes
// of orders entering or leaving its queue.
func wants(station string, n Notification) bool {
	if station == "" {
		return true
	}
	if n.Name != OrderStatusChanged {
		return n.Station == station
	}
	queue, _ := QueueStatus(station)
	return n.Data.Status == queue || n.Data.Previous == queue
}

// Frame is one notification encoded as a Server-Sent Events message (its
// id, event and data lines and the blank line that ends it). It is made
// once, when the notification is published, and shared read-only by every
// stream: a thousand browsers cost a thousand writes, not a thousand
// encodings.
type Frame struct {
	ID    uint64
	Bytes []byte
}

// encodeData is the JSON of a notification's data.
func encodeData(p Payload) []byte {
	data, err := json.Marshal(p)
	if err != nil { // a Payload always encodes; keep the stream well-formed if not
		data = []byte("{}")
	}
	return data
}

// frame encodes n, whose data is already encoded.
func frame(n Notification, data []byte) *Frame {
	b := make([]byte, 0, len(data)+len(n.Name)+32)
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, n.ID, 10)
	b = append(b, "\nevent: "...)
	b = append(b, n.Name...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	return &Frame{ID: n.ID, Bytes: b}
}

// ErrTooManyStreams refuses a stream beyond the cap given to OpenStream.
var ErrTooManyStreams = errors.New("too many live notification streams")

// ErrStreamClosed says a stream was closed, or dropped as too slow.
var ErrStreamClosed = errors.New("notification stream closed")

// Stream is a live subscription, for the notifications endpoint (Frames) or
// a reader in the same process (Notifications). It holds no queue of its own: it is a cursor into the hub's replay buffer, where each
// notification is stored once, already encoded. A thousand streams cost a
// thousand cursors, and a stream that stops reading costs nothing more
// while it waits; when what it has not sent falls out of the buffer, the
// hub drops it.
type Stream struct {
	hub     *Hub
	station string
	cursor  uint64 // the last notification id passed on (guarded by hub.mu)
	done    chan struct{}
	closed  bool
}

// OpenStream starts a stream for station ("" for all). With lastID > 0 it
// begins after lastID with what the replay buffer still holds; older ones
// are gone, so a client that was away long should reload the state it shows
// (the web UI does on every connect). With max > 0 at most max streams are open at once; beyond
// that it returns ErrTooManyStreams.
func (h *Hub) OpenStream(station string, lastID uint64, max int) (*Stream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if max > 0 && len(h.streams) >= max {
		return nil, ErrTooManyStreams
	}
	s := &Stream{hub: h, station: station, cursor: h.next, done: make(chan struct{})}
	if lastID > 0 && lastID < h.next {
		s.cursor = lastID
		if oldest := h.oldest(); lastID < oldest-1 {
			s.cursor = oldest - 1 // older ones are gone
		}
	}
	h.streams[s] = struct{}{}
	return s, nil
}

// closedChan is ready at once.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Ready returns a channel that is closed once there may be notifications
// for the stream (or it was closed): then call Frames or Notifications.
func (s *Stream) Ready() <-chan struct{} {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed || h.next > s.cursor {
		return closedChan
	}
	return h.signal
}

// Frames appends to buf the encoded notifications after the cursor that
// are for this stream's station, oldest first, and moves the cursor past
// everything published so far. After the stream was closed or dropped it
// returns ErrStreamClosed.
func (s *Stream) Frames(buf []*Frame) ([]*Frame, error) {
	return take(s, buf, func(n *Notification) *Frame { return n.frame })
}

// Notifications is Frames for a reader in the same process: it appends the
// notifications themselves, with the same cursor and station filter. Their
// Items are shared with the hub and every other reader: do not modify them.
func (s *Stream) Notifications(buf []Notification) ([]Notification, error) {
	return take(s, buf, func(n *Notification) Notification { return *n })
}

// take appends to buf, as pick makes them, the notifications after the
// stream's cursor that are for its station, oldest first, and moves the
// cursor past everything published so far; ErrStreamClosed once the stream
// was closed or dropped.
func take[T any](s *Stream, buf []T, pick func(*Notification) T) ([]T, error) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return buf, ErrStreamClosed
	}
	for id := max(s.cursor+1, h.oldest()); id <= h.next; id++ {
		if n := &h.replay[id%uint64(len(h.replay))]; wants(s.station, *n) {
			buf = append(buf, pick(n))
		}
	}
	s.cursor = h.next
	return buf, nil
}

// Done is closed when the stream is closed or dropped.
func (s *Stream) Done() <-chan struct{} { return s.done }

// CloseStream ends a stream; closing twice, or after the hub dropped it as
// too slow, is harmless.
func (h *Hub) CloseStream(s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeStreamLocked(s)
}

func (h *Hub) closeStreamLocked(s *Stream) {
	if s.closed {
		return
	}
	s.closed = true
	delete(h.streams, s)
	close(s.done)
}

// Streams returns how many streams are open.
func (h *Hub) Streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}
