package httpapi

import (
	"errors"
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

// sseRetryAfter is what a client refused for too many streams is told to
// wait.
const sseRetryAfter = 5 * time.Second

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

	stream, err := s.hub.OpenStream(station, lastID, s.MaxSSEClients)
	if errors.Is(err, notify.ErrTooManyStreams) {
		w.Header().Set("Retry-After", strconv.Itoa(int(sseRetryAfter.Seconds())))
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many live notification streams (at most %d); try again later", s.MaxSSEClients))
		return nil
	}
	if err != nil {
		return fmt.Errorf("open notification stream: %w", err)
	}
	defer s.hub.CloseStream(stream)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := w.Write(b)
		return err
	}
	if write([]byte("retry: 2000\n: connected\n\n")) != nil || rc.Flush() != nil {
		return nil // the client is gone; nothing to answer
	}
	keepAlive := time.NewTicker(s.KeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-keepAlive.C:
			if write([]byte(": keep-alive\n\n")) != nil || rc.Flush() != nil {
				return nil
			}
		case f, ok := <-stream.C:
			if !ok {
				return nil // dropped as too slow; the browser reconnects with Last-Event-ID
			}
			// The frame is encoded once for every stream. Whatever else is
			// already waiting goes out with it in one flush: one order's
			// burst of notifications costs a client one write, not ten.
			err := write(f.Bytes)
			for more := len(stream.C); err == nil && more > 0; more-- {
				if f, ok = <-stream.C; !ok {
					return nil
				}
				err = write(f.Bytes)
			}
			if err != nil || rc.Flush() != nil {
				return nil
			}
		}
	}
}
