package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/infra/auth"
)

// postEvent takes a CloudEvent in binary or structured mode. The reply, if
// any (the first event no function here handles), comes back in binary mode
// with 200; without one the answer is 202. A refusal is 400 (malformed) or
// 422 (does not fit the order), never retried by Knative.
func (s *Server) postEvent(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return asInvalid(err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	e, err := cloudevents.NewEventFromHTTPRequest(r)
	if err != nil {
		return domain.Errorf(domain.KindInvalid,
			"not a CloudEvent (binary mode needs ce-specversion, ce-id, ce-source and ce-type headers; structured mode needs Content-Type application/cloudevents+json): %v", err)
	}
	// Who may post this type: checked before anything is written.
	if err := auth.EventAllowed(r.Context(), e.Type()); err != nil {
		return err
	}
	reply, err := s.app.Ingest(r.Context(), *e)
	if err != nil {
		if st := EventStatusOf(err); st < http.StatusInternalServerError {
			writeError(w, st, err.Error())
			return nil
		}
		return err
	}
	if reply == nil {
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	if err := cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(reply), http.StatusOK, w); err != nil {
		return fmt.Errorf("write reply: %w", err)
	}
	return nil
}
