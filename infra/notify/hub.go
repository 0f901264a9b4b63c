// Package notify tells the kitchen what happens, as it happens: a hub that
// turns order state changes into the contract's notifications
// (InformNewOrderToMix, ..., OrderStatusChanged) and fans them out to
// subscribers (the SSE endpoint). A slow subscriber is dropped rather than
// allowed to hold up the pipeline; it reconnects with Last-Event-ID and gets
// what it missed from a short replay buffer.
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// Notification names.
const (
	InformNewOrderToMix      = "InformNewOrderToMix"
	InformNewOrderToBake     = "InformNewOrderToBake"
	InformNewOrderToDecorate = "InformNewOrderToDecorate"
	InformNewOrderToPackage  = "InformNewOrderToPackage"
	OrderStatusChanged       = "OrderStatusChanged"
)

// Stations, as named in ?station=.
const (
	StationMixer     = "mixer"
	StationBaker     = "baker"
	StationDecorator = "decorator"
	StationPackaging = "packaging"
)

// Stations lists the stations in kitchen order, from events.Pipeline.
var Stations = func() []string {
	var out []string
	for _, s := range events.Kitchen() {
		out = append(out, s.Station)
	}
	return out
}()

// QueueStatus returns the order state that is station's queue: the state
// orders wait in for that station's step.
func QueueStatus(station string) (string, bool) {
	for _, status := range events.Statuses {
		if s, ok := events.WaitingFor(status); ok && s.Station == station {
			return status, true
		}
	}
	return "", false
}

// Notification is one message to the kitchen.
type Notification struct {
	ID      uint64  `json:"-"`
	Name    string  `json:"-"`
	Station string  `json:"-"` // the station it concerns; "" for everyone
	Data    Payload `json:"data"`
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

// Hub fans notifications out to subscribers.
type Hub struct {
	mu     sync.Mutex
	next   uint64
	subs   map[*Subscription]struct{}
	replay []Notification // the most recent, oldest first
	size   int            // replay capacity
	buffer int            // per-subscriber channel capacity
}

// NewHub returns a hub remembering the last replay notifications, giving each
// subscriber a buffer of buffer notifications before it is dropped.
func NewHub(replay, buffer int) *Hub {
	return &Hub{subs: map[*Subscription]struct{}{}, size: replay, buffer: buffer}
}

// Subscription receives notifications for one station, or all ("").
type Subscription struct {
	C       <-chan Notification
	c       chan Notification
	station string
	closed  bool
}

// Publish takes a status-changed event (the one notification the
// functions emit, in-process or from Kafka's updates topic) and tells the
// subscribers; other events are not for the hub.
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
	if step, ok := events.WaitingFor(u.Status); ok {
		h.publish(Notification{Name: step.Inform, Station: step.Station, Data: p})
	}
	h.publish(Notification{Name: OrderStatusChanged, Data: p})
}

func (h *Hub) publish(n Notification) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	n.ID = h.next
	h.replay = append(h.replay, n)
	if len(h.replay) > h.size {
		h.replay = h.replay[len(h.replay)-h.size:]
	}
	for s := range h.subs {
		if !s.wants(n) {
			continue
		}
		select {
		case s.c <- n:
		default: // too slow: drop it; it will reconnect and replay
			h.closeLocked(s)
		}
	}
}

// wants reports whether a notification is for this subscriber: a station
// gets its own Inform* notifications and the status changes of orders
// entering or leaving its queue.
func (s *Subscription) wants(n Notification) bool {
	if s.station == "" {
		return true
	}
	if n.Name != OrderStatusChanged {
		return n.Station == s.station
	}
	queue, _ := QueueStatus(s.station)
	return n.Data.Status == queue || n.Data.Previous == queue
}

// Subscribe starts a subscription for station ("" for all). With lastID > 0
// the notifications after lastID still in the replay buffer come first on
// its channel; older ones are gone, so a client that was away long should
// reload the state it shows (the web UI does on every connect).
func (h *Hub) Subscribe(station string, lastID uint64) *Subscription {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &Subscription{station: station}
	var missed []Notification
	if lastID > 0 {
		for _, n := range h.replay {
			if n.ID > lastID && s.wants(n) {
				missed = append(missed, n)
			}
		}
	}
	s.c = make(chan Notification, h.buffer+len(missed))
	s.C = s.c
	for _, n := range missed {
		s.c <- n
	}
	h.subs[s] = struct{}{}
	return s
}

// Unsubscribe ends a subscription and closes its channel.
func (h *Hub) Unsubscribe(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeLocked(s)
}

func (h *Hub) closeLocked(s *Subscription) {
	if s.closed {
		return
	}
	s.closed = true
	delete(h.subs, s)
	close(s.c)
}

// Subscribers returns how many subscriptions are open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
