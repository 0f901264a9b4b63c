package httpapi_test

import (
	"encoding/json"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/infra/httpapi"
)

var curlURL = regexp.MustCompile(`'?http://127\.0\.0\.1:8080(/[^\s']*)'?`)

// readmeCurls returns the curl commands of the README's code blocks, with
// continuation lines joined.
func readmeCurls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && !strings.Contains(trimmed, "curl ") {
			continue
		}
		cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
		if !strings.HasSuffix(trimmed, "\\") {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	return out
}

// matches reports whether a README path matches a document path, where
// {x} in the document and a $shell variable in the README match any
// segment.
func matches(doc, readme string) bool {
	ds, rs := strings.Split(doc, "/"), strings.Split(readme, "/")
	if len(ds) != len(rs) {
		return false
	}
	for i := range ds {
		if ds[i] != rs[i] && !strings.HasPrefix(ds[i], "{") && !strings.HasPrefix(rs[i], "$") {
			return false
		}
	}
	return true
}

func TestEveryCurlInTheREADMEIsAnOperationOfTheOpenAPIDocument(t *testing.T) {
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(httpapi.OpenAPI, &d); err != nil {
		t.Fatal(err)
	}
	curls := readmeCurls(t)
	if len(curls) < 10 {
		t.Fatalf("found only %d curl commands in the README", len(curls))
	}
	for _, c := range curls {
		m := curlURL.FindStringSubmatch(c)
		if m == nil {
			continue // a curl of another service
		}
		u, err := url.Parse(m[1])
		if err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		method := "get"
		switch {
		case strings.Contains(c, "-X PUT"):
			method = "put"
		case strings.Contains(c, " -d "):
			method = "post"
		}
		found := false
		for path, ops := range d.Paths {
			if _, ok := ops[method]; ok && matches(path, u.Path) {
				found = true
			}
		}
		if !found {
			t.Errorf("the README's %s %s is no operation of openapi.json:\n%s", strings.ToUpper(method), u.Path, c)
		}
	}
}
