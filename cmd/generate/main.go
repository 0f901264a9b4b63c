// Command generate writes the files that name the pipeline's functions,
// topics and stations (the API and event documents, the compose services,
// the Knative manifests, the Prometheus targets) from events.Pipeline:
// every file of the repository named <name>.tmpl is a text/template whose
// output is <name>. `make generate` runs it; its test fails when a
// generated file is not what its template makes of the pipeline.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

// Suffix marks a template; the generated file is its name without it.
const Suffix = ".tmpl"

// Function is a row of the pipeline as the templates see it.
type Function struct {
	events.Step
	Replies []string // every type it may answer with (events.RepliesOf)
	Kitchen bool     // a kitchen step
	Queue   string   // kitchen: the state its station's queue holds
	Last    bool     // kitchen: the last step (the order ships)
}

// Data is what every template is executed with.
type Data struct {
	Functions []Function // in flow order
	Kitchen   []Function // the kitchen steps, in flow order
	Topics    []string   // every default topic: the pipeline's, then updates and dead letters
	Statuses  []string   // every order state, in flow order
	Stations  []string   // every station, in kitchen order
	Informs   []string   // every station's notification, in kitchen order
	Flow      []string   // the states a shipped order passed, in order
	// Cancellable are the states a customer may cancel in; CancelUntil is
	// the first kitchen state past them.
	Cancellable []string
	CancelUntil string
}

// NewData reads the pipeline.
func NewData() Data {
	var d Data
	queue := events.StatusApproved
	for _, s := range events.Pipeline {
		f := Function{Step: s, Replies: events.RepliesOf(s), Kitchen: s.Records != ""}
		if f.Kitchen {
			f.Queue, queue = queue, s.Records
			d.Kitchen = append(d.Kitchen, f)
			d.Stations = append(d.Stations, s.Station)
			d.Informs = append(d.Informs, s.Inform)
		}
		d.Functions = append(d.Functions, f)
		if !slices.Contains(d.Topics, s.Topic) {
			d.Topics = append(d.Topics, s.Topic)
		}
	}
	if n := len(d.Kitchen); n > 0 {
		d.Kitchen[n-1].Last = true
	}
	d.Topics = append(d.Topics, events.TopicOrderUpdates, events.TopicDeadLetters)
	d.Statuses = events.Statuses()
	d.Flow = append([]string{events.StatusCreated, events.StatusApproved}, d.Statuses[2:len(d.Statuses)-2]...)
	d.Cancellable = domain.Cancellable()
	if n := len(d.Cancellable); n < len(d.Flow) {
		d.CancelUntil = d.Flow[n]
	}
	return d
}

var funcs = template.FuncMap{
	"join": strings.Join,
	// json is v as JSON (a string quoted and escaped).
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	// jsonList is a list of strings as JSON array items, one per line,
	// each indented by indent spaces (as encoding/json's indenting writes
	// them).
	"jsonList": func(indent int, vs []string) (string, error) {
		lines := make([]string, len(vs))
		for i, v := range vs {
			b, err := json.Marshal(v)
			if err != nil {
				return "", err
			}
			lines[i] = strings.Repeat(" ", indent) + string(b)
		}
		return strings.Join(lines, ",\n"), nil
	},
	"title":   func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
	"topicOf": events.TopicOf,
	"message": message,
	// short is an event type without "com.cupcakes.order.".
	"short": func(t string) string { return strings.TrimPrefix(t, "com.cupcakes.order.") },
	// pm is a Postman variable reference, {{name}}, which the template
	// would otherwise take for an action of its own.
	"pm": func(name string) string { return "{{" + name + "}}" },
}

// message is the AsyncAPI message name of an event type: the name of the
// function whose type it is, else what follows "com.cupcakes.order.", in
// camelCase (order-created: orderCreated; cancel-requested: cancelRequested).
func message(t string) string {
	name := strings.TrimPrefix(t, "com.cupcakes.order.")
	if s, ok := events.StepFor(t); ok && s.Takes == t {
		name = s.Function
	}
	parts := strings.Split(name, "-")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

// Templates lists the templates under root, relative to it.
func Templates(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, Suffix) {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			out = append(out, rel)
		}
		return nil
	})
	return out, err
}

// Render returns what the template at path makes of d.
func Render(path string, d Data) ([]byte, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := template.New(filepath.Base(path)).Funcs(funcs).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("execute %s: %w", path, err)
	}
	return b.Bytes(), nil
}

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	if err := generate(root); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func generate(root string) error {
	paths, err := Templates(root)
	if err != nil {
		return err
	}
	d := NewData()
	for _, p := range paths {
		out, err := Render(filepath.Join(root, p), d)
		if err != nil {
			return err
		}
		target := filepath.Join(root, strings.TrimSuffix(p, Suffix))
		if old, err := os.ReadFile(target); err == nil && bytes.Equal(old, out) {
			continue
		}
		if err := os.WriteFile(target, out, 0o644); err != nil {
			return err
		}
		fmt.Println("generate: wrote", strings.TrimSuffix(p, Suffix))
	}
	return nil
}
