package httpapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/infra/httpapi"
)

var update = flag.Bool("update", false, "rewrite the Postman collection from openapi.json")

// postmanFile is the Postman (v2.1) collection of the API, made from
// openapi.json: `go test ./infra/httpapi -run Postman -update` rewrites it.
const postmanFile = "cupcake-factory.postman_collection.json"

type oaSchema struct {
	Ref        string              `json:"$ref"`
	Type       string              `json:"type"`
	Enum       []any               `json:"enum"`
	Minimum    *float64            `json:"minimum"`
	Required   []string            `json:"required"`
	Properties map[string]oaSchema `json:"properties"`
	Items      *oaSchema           `json:"items"`
}

type oaOperation struct {
	OperationID string                `json:"operationId"`
	Summary     string                `json:"summary"`
	Tags        []string              `json:"tags"`
	Security    []map[string][]string `json:"security"`
	Parameters  []struct {
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema oaSchema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
}

type oaDoc struct {
	Paths      map[string]map[string]oaOperation `json:"paths"`
	Components struct {
		Schemas map[string]oaSchema `json:"schemas"`
	} `json:"components"`
}

// sample values for properties by name, so the requests work as they are
// against `make run` (alice is the demo customer).
var samples = map[string]any{"orderId": "o-1001", "customerId": "alice", "by": "maria", "reason": "oven broke",
	"name": "Bob", "creditLimit": 20000, "quantity": 6, "flavour": "vanilla", "size": "M"}

func example(d oaDoc, s oaSchema, name string) any {
	if s.Ref != "" {
		return example(d, d.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")], name)
	}
	if v, ok := samples[name]; ok {
		return v
	}
	switch {
	case len(s.Enum) > 0:
		return s.Enum[0]
	case s.Type == "object":
		out := map[string]any{}
		for _, p := range s.Required {
			out[p] = example(d, s.Properties[p], p)
		}
		return out
	case s.Type == "array" && s.Items != nil:
		return []any{example(d, *s.Items, "")}
	case s.Type == "integer" && s.Minimum != nil:
		return *s.Minimum
	case s.Type == "integer":
		return 1
	case s.Type == "boolean":
		return true
	}
	return "text"
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// collection makes the Postman collection of the document: one folder per
// tag, one request per operation, bearer auth from {{token}} where the
// operation needs a role.
func collection(t *testing.T) []byte {
	var d oaDoc
	if err := json.Unmarshal(httpapi.OpenAPI, &d); err != nil {
		t.Fatal(err)
	}
	folders := map[string][]any{}
	for _, path := range slices.Sorted(func(yield func(string) bool) {
		for p := range d.Paths {
			if !yield(p) {
				return
			}
		}
	}) {
		for _, method := range []string{"get", "post", "put", "delete"} {
			op, ok := d.Paths[path][method]
			if !ok {
				continue
			}
			pmPath := pathParam.ReplaceAllString(path, ":$1")
			segs := strings.Split(strings.Trim(pmPath, "/"), "/")
			url := map[string]any{"raw": "{{baseUrl}}" + pmPath, "host": []string{"{{baseUrl}}"}, "path": segs}
			var vars, query []map[string]any
			for _, p := range op.Parameters {
				switch p.In {
				case "path":
					id := samples["orderId"]
					if strings.Contains(path, "customers") {
						id = samples["customerId"]
					}
					vars = append(vars, map[string]any{"key": p.Name, "value": id})
				case "query":
					query = append(query, map[string]any{"key": p.Name, "value": "", "disabled": true})
				}
			}
			if vars != nil {
				url["variable"] = vars
			}
			if query != nil {
				url["query"] = query
			}
			req := map[string]any{"method": strings.ToUpper(method), "url": url, "description": op.Summary}
			if len(op.Security) == 0 {
				req["auth"] = map[string]any{"type": "noauth"}
			}
			if op.RequestBody != nil {
				ct, s := "application/json", op.RequestBody.Content["application/json"].Schema
				if path == "/" {
					s = d.Components.Schemas["NewOrder"]
					req["header"] = []map[string]string{{"key": "Content-Type", "value": ct},
						{"key": "ce-specversion", "value": "1.0"}, {"key": "ce-id", "value": "{{$guid}}"}, {"key": "ce-source", "value": "postman"},
						{"key": "ce-type", "value": "com.cupcakes.order.created"}, {"key": "ce-subject", "value": "o-1001"}}
				} else {
					req["header"] = []map[string]string{{"key": "Content-Type", "value": ct}}
				}
				raw, _ := json.MarshalIndent(example(d, s, ""), "", "  ")
				req["body"] = map[string]any{"mode": "raw", "raw": string(raw), "options": map[string]any{"raw": map[string]string{"language": "json"}}}
			}
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			folders[tag] = append(folders[tag], map[string]any{"name": op.OperationID, "request": req})
		}
	}
	var items []any
	for _, tag := range slices.Sorted(func(yield func(string) bool) {
		for k := range folders {
			if !yield(k) {
				return
			}
		}
	}) {
		items = append(items, map[string]any{"name": tag, "item": folders[tag]})
	}
	c := map[string]any{
		"info": map[string]any{"name": "cupcake-factory", "description": "Made from the OpenAPI document (GET /openapi.json) by infra/httpapi/postman_test.go; set token for a deployment with AUTH_TOKENS.",
			"schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
		"auth":     map[string]any{"type": "bearer", "bearer": []map[string]string{{"key": "token", "value": "{{token}}", "type": "string"}}},
		"variable": []map[string]string{{"key": "baseUrl", "value": "http://127.0.0.1:8080"}, {"key": "token", "value": ""}},
		"item":     items,
	}
	out, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

func TestThePostmanCollectionIsTheOpenAPIDocuments(t *testing.T) {
	want := collection(t)
	if *update {
		if err := os.WriteFile(postmanFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(postmanFile)
	if err != nil {
		t.Fatalf("%v (go test ./infra/httpapi -run Postman -update makes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what openapi.json makes; run go test ./infra/httpapi -run Postman -update", postmanFile)
	}
}
