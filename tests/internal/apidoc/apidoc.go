// Package apidoc checks a running cupcake-factory's HTTP answers against the
// OpenAPI document it serves (GET /openapi.json) with kin-openapi: the
// status must be one the operation describes, and the headers, content type
// and body must fit what it says of that status.
package apidoc

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

func init() {
	// Bodies that are not JSON are checked as strings.
	text := func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(body)
		return string(b), err
	}
	for _, ct := range []string{"text/html", "text/css", "text/javascript", "text/event-stream"} {
		openapi3filter.RegisterBodyDecoder(ct, text)
	}
}

// Doc is the document a process serves, ready to check its answers.
type Doc struct {
	T      *openapi3.T
	router routers.Router
	p      *runner.Process
}

// Load reads GET /openapi.json from p, validates it as an OpenAPI 3
// document and routes requests to p's address with it.
func Load(tb testing.TB, p *runner.Process) *Doc {
	tb.Helper()
	r := p.Get(tb, "/openapi.json")
	if r.Status != http.StatusOK {
		tb.Fatalf("GET /openapi.json = %d %s", r.Status, r.Body)
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.Body)
	if err != nil {
		tb.Fatalf("load /openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		tb.Fatalf("/openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: p.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		tb.Fatalf("route with /openapi.json: %v", err)
	}
	return &Doc{T: doc, router: router, p: p}
}

// Do sends a request to the process, as curl would, and fails the test if
// the answer does not fit the document.
func (d *Doc) Do(tb testing.TB, method, path string, header map[string]string, body string) runner.Response {
	tb.Helper()
	resp := d.p.Do(tb, method, path, header, body)
	d.Check(tb, method, path, header, resp)
	return resp
}

// Check fails the test if resp, the answer to method and path, does not fit
// the document.
func (d *Doc) Check(tb testing.TB, method, path string, header map[string]string, resp runner.Response) {
	tb.Helper()
	req, err := http.NewRequest(method, d.p.URL+path, strings.NewReader(""))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	route, params, err := d.router.FindRoute(req)
	if err != nil {
		tb.Errorf("%s %s: no operation in /openapi.json: %v", method, path, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.Status,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(resp.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		tb.Errorf("%s %s answered %d, which /openapi.json does not describe: %v\nbody: %.300s", method, path, resp.Status, err, resp.Body)
	}
}
