package httpapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
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
	q := r.URL.Query()
	station := q.Get("station")
	if stations := notify.Stations(); q.Has("station") && !slices.Contains(stations, station) {
		return &events.ValidationError{Problems: []string{fmt.Sprintf("station must be one of %v, got %q", stations, station)}}
	}
	var lastID uint64
	if v := r.Header.Get("Last-Event-ID"); v != "" { // empty: nothing seen yet
		n, err := strconv.ParseUint(v, 10, 64)
		switch {
		case errors.Is(err, strconv.ErrRange):
			n = math.MaxUint64 // past every id: nothing to replay
		case err != nil:
			return &events.ValidationError{Problems: []string{"Last-Event-ID must be a number"}}
		}
		lastID = n
	}

	stream, err := s.hub.OpenStream(station, lastID, s.MaxSSEClients)
	if errors.Is(err, notify.ErrTooManyStreams) {
		s.metrics.SSERefused()
		w.Header().Set("Retry-After", strconv.Itoa(int(sseRetryAfter.Seconds())))
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many live notification streams (at most %d); try again later", s.MaxSSEClients))
		return nil
	}
	if err != nil {
		return fmt.Errorf("open notification stream: %w", err)
	}
	defer s.closeStream(stream)

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
	var frames []*notify.Frame
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-keepAlive.C:
			if write([]byte(": keep-alive\n\n")) != nil || rc.Flush() != nil {
				return nil
			}
		case <-stream.Ready():
			// Let the rest of a burst (one order makes about ten
			// notifications in a few milliseconds) arrive, and send it in
			// one write: a thousand streams then cost a thousand writes per
			// burst, not ten thousand, and the pipeline keeps its CPU.
			if s.SSEBatch > 0 {
				t := time.NewTimer(s.SSEBatch)
				select {
				case <-r.Context().Done():
					t.Stop()
					return nil
				case <-t.C:
				}
			}
			var err error
			if frames, err = stream.Frames(frames[:0]); err != nil {
				return nil // dropped as too slow; the browser reconnects with Last-Event-ID
			}
			for _, f := range frames { // encoded once, shared by every stream
				if err = write(f.Bytes); err != nil {
					return nil
				}
			}
			if len(frames) > 0 && rc.Flush() != nil {
				return nil
			}
		}
	}
}

// closeStream ends a stream. When most of the streams that were open have
// gone (a crowd of browsers closed), the memory they held is handed back
// to the system at once, rather than whenever the runtime next collects:
// an idle server may not collect for minutes.
func (s *Server) closeStream(st *notify.Stream) {
	s.hub.CloseStream(st)
	s.release.streamClosed(s.hub.Streams())
}

// releaser frees the memory of many closed streams, at most every
// releaseEvery, once the open streams are at most half of their recent
// peak and that peak was at least releaseFloor.
type releaser struct {
	mu      sync.Mutex
	peak    int
	pending bool
}

const (
	releaseFloor = 100
	releaseEvery = 2 * time.Second
)

func (r *releaser) streamClosed(open int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.peak = max(r.peak, open+1)
	if r.pending || r.peak < releaseFloor || open > r.peak/2 {
		return
	}
	r.pending = true
	time.AfterFunc(releaseEvery, func() {
		// Twice: what the first collection finds in sync.Pools (net/http
		// keeps each connection's buffers there) only goes at the second.
		debug.FreeOSMemory()
		debug.FreeOSMemory()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.pending = false
		r.peak = 0
	})
}
