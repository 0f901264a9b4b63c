package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/notify"
)

// writeTimeout bounds one write to a notification stream: a client that
// stopped reading is let go instead of holding a goroutine forever.
const writeTimeout = 10 * time.Second

// notifications streams Server-Sent Events: the kitchen notifications,
// optionally for one station, with keep-alive comments, resuming after
// Last-Event-ID from the hub's replay buffer.
func (s *Server) notifications(w http.ResponseWriter, r *http.Request) error {
	station := r.URL.Query().Get("station")
	if station != "" && !slices.Contains(notify.Stations, station) {
		return &events.ValidationError{Problems: []string{fmt.Sprintf("station must be one of %v, got %q", notify.Stations, station)}}
	}
	var lastID uint64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return &events.ValidationError{Problems: []string{"Last-Event-ID must be a number"}}
		}
		lastID = n
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	sub := s.hub.Subscribe(station, lastID)
	defer s.hub.Unsubscribe(sub)

	write := func(format string, args ...any) error {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := write("retry: 2000\n: connected\n\n"); err != nil {
		return nil // the client is gone; nothing to answer
	}
	keepAlive := time.NewTicker(s.KeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-keepAlive.C:
			if err := write(": keep-alive\n\n"); err != nil {
				return nil
			}
		case n, ok := <-sub.C:
			if !ok {
				return nil // dropped as too slow; the browser reconnects with Last-Event-ID
			}
			data, err := json.Marshal(n.Data)
			if err != nil {
				return fmt.Errorf("encode notification: %w", err)
			}
			if err := write("id: %d\nevent: %s\ndata: %s\n\n", n.ID, n.Name, data); err != nil {
				return nil
			}
		}
	}
}
