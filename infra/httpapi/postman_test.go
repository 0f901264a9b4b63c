package httpapi_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/infra/httpapi"
)

// The Postman collections are flows a user runs top to bottom (newman runs
// them against a live runner in tests/postman). This test keeps them on
// the API as the OpenAPI document describes it: every request they send is
// an operation of the document.

type postmanItem struct {
	Name    string        `json:"name"`
	Item    []postmanItem `json:"item"`
	Request *struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	} `json:"request"`
}

func requests(items []postmanItem) []postmanItem {
	var out []postmanItem
	for _, it := range items {
		if it.Request != nil {
			out = append(out, it)
		}
		out = append(out, requests(it.Item)...)
	}
	return out
}

func TestEveryRequestOfTheCollectionsIsAnOperationOfTheOpenAPIDocument(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(httpapi.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*.postman_collection.json")
	if err != nil || len(files) < 2 {
		t.Fatalf("collections %v, %v; want the default and the manual one", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Item []postmanItem `json:"item"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		reqs := requests(c.Item)
		if len(reqs) < 10 {
			t.Errorf("%s: %d requests; want a flow", f, len(reqs))
		}
		for _, r := range reqs {
			raw := strings.Replace(r.Request.URL, "{{baseUrl}}", "http://x", 1)
			u, err := url.Parse(raw)
			if err != nil {
				t.Errorf("%s: %q: %v", f, r.Name, err)
				continue
			}
			found := false
			for p, ops := range doc.Paths {
				if _, ok := ops[strings.ToLower(r.Request.Method)]; ok && matches(p, strings.NewReplacer("{{", "$", "}}", "").Replace(u.Path)) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: %q sends %s %s, which the OpenAPI document does not describe", f, r.Name, r.Request.Method, u.Path)
			}
		}
	}
}
