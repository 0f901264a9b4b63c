package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/infra/auth"
	"github.com/cupcake-factory/cupcake-factory/infra/httpapi"
	"github.com/cupcake-factory/cupcake-factory/infra/metrics"
	"github.com/cupcake-factory/cupcake-factory/infra/notify"
)

// operation is what the tests read of an OpenAPI operation.
type operation struct {
	OperationID string                 `json:"operationId"`
	Security    *[]map[string][]string `json:"security"`
	Roles       []string               `json:"x-roles"`
	Responses   map[string]any         `json:"responses"`
}

type document struct {
	OpenAPI string                          `json:"openapi"`
	Paths   map[string]map[string]operation `json:"paths"`
}

func readDocument(t *testing.T) document {
	t.Helper()
	var d document
	if err := json.Unmarshal(httpapi.OpenAPI, &d); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return d
}

// routeOf turns a ServeMux pattern into the OpenAPI method and path.
func routeOf(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	return strings.ToLower(method), strings.TrimSuffix(path, "{$}")
}

func newServer() *httpapi.Server {
	return httpapi.New(nil, nil, notify.NewHub(16), metrics.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestEveryRegisteredRouteIsDescribedAndEveryDescribedRouteIsRegistered(t *testing.T) {
	d := readDocument(t)
	registered := map[string]bool{}
	for _, p := range newServer().Routes() {
		method, path := routeOf(p)
		registered[method+" "+path] = true
		if _, ok := d.Paths[path][method]; !ok {
			t.Errorf("route %q is registered but openapi.json does not describe %s %s", p, strings.ToUpper(method), path)
		}
	}
	for path, ops := range d.Paths {
		for method := range ops {
			if !registered[method+" "+path] {
				t.Errorf("openapi.json describes %s %s, which the server does not register", strings.ToUpper(method), path)
			}
		}
	}
}

func TestTheDocumentsRolesAreTheRoleTables(t *testing.T) {
	d := readDocument(t)
	for _, p := range newServer().Routes() {
		method, path := routeOf(p)
		op := d.Paths[path][method]
		access, _ := auth.RouteAccess(p)
		t.Run(p, func(t *testing.T) {
			if op.Security == nil {
				t.Fatalf("no security: say [] for an open route, [{bearer: []}] otherwise")
			}
			if access.Open {
				if len(*op.Security) != 0 || len(op.Roles) != 0 {
					t.Errorf("open in the role table, but the document asks for %v %v", *op.Security, op.Roles)
				}
				return
			}
			want := strings.Split((access.Roles | auth.Admin).String(), ",")
			got := slices.Sorted(slices.Values(op.Roles))
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("x-roles %v, the role table says %v", got, want)
			}
			if len(*op.Security) != 1 || (*op.Security)[0]["bearer"] == nil {
				t.Errorf("security %v, want [{bearer: []}]", *op.Security)
			}
			for _, code := range []string{"401", "403"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("no %s answer described", code)
				}
			}
		})
	}
}

func TestTheDocumentIsServedOpenAsJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	newServer().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var d document
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil || !strings.HasPrefix(d.OpenAPI, "3.") {
		t.Errorf("not an OpenAPI 3 document (%v): openapi %q", err, d.OpenAPI)
	}
}
