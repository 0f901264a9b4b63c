package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	kafkabroker "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/eventing/v1"
	kafkasink "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/eventing/v1alpha1"
	kafkasource "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/sources/v1beta1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	flowsv1 "knative.dev/eventing/pkg/apis/flows/v1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

// Placeholders the manifests carry; `make deploy` replaces them.
const (
	runnerImage = "registry.invalid/cupcake-factory/runner:replace-me"
	bootstrap   = "my-cluster-kafka-bootstrap.kafka.svc:9092"
	namespace   = "cupcake-factory"
	apiService  = "cupcake-factory-api"
)

// repoRoot is the product module's root (this package is tests/deploy).
func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		tb.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(mod), "module github.com/cupcake-factory/cupcake-factory\n") {
		tb.Fatalf("%s is not the cupcake-factory module root (%v)", root, err)
	}
	return root
}

// set is the typed objects of some manifest directories, by name.
type set struct {
	namespaces map[string]*corev1.Namespace
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	jobs       map[string]*batchv1.Job
	services   map[string]*servingv1.Service
	sinks      map[string]*kafkasink.KafkaSink
	sources    map[string]*kafkasource.KafkaSource
	sequences  map[string]*flowsv1.Sequence
	brokers    map[string]*eventingv1.Broker
	triggers   map[string]*eventingv1.Trigger
}

type header struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// validatable is what every Knative type offers.
type validatable interface {
	apis.Defaultable
	apis.Validatable
}

// loadManifests decodes every document of every .yaml file in dirs (relative
// to infra/knative) strictly into its Go type, defaults and validates the
// Knative ones, and fails on any unknown kind, duplicate or problem.
func loadManifests(t *testing.T, dirs ...string) *set {
	t.Helper()
	s := &set{
		namespaces: map[string]*corev1.Namespace{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, jobs: map[string]*batchv1.Job{},
		services: map[string]*servingv1.Service{}, sinks: map[string]*kafkasink.KafkaSink{},
		sources: map[string]*kafkasource.KafkaSource{}, sequences: map[string]*flowsv1.Sequence{},
		brokers: map[string]*eventingv1.Broker{}, triggers: map[string]*eventingv1.Trigger{},
	}
	root := filepath.Join(repoRoot(t), "infra", "knative")
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no manifests in %s (%v)", filepath.Join(root, dir), err)
		}
		sort.Strings(files)
		for _, file := range files {
			for i, doc := range documents(t, file) {
				where := fmt.Sprintf("%s document %d", filepath.Join(dir, filepath.Base(file)), i+1)
				s.add(t, where, doc)
			}
		}
	}
	return s
}

func documents(t *testing.T, file string) [][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := k8syaml.NewYAMLReader(bufio.NewReader(f))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		// Skip documents that hold only comments.
		if j, err := yaml.YAMLToJSON(doc); err != nil {
			t.Fatalf("%s: %v", file, err)
		} else if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			continue
		}
		docs = append(docs, doc)
	}
}

func (s *set) add(t *testing.T, where string, doc []byte) {
	t.Helper()
	var h header
	if err := yaml.Unmarshal(doc, &h); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	name := h.Metadata.Name
	if name == "" {
		t.Fatalf("%s: %s without a name", where, h.Kind)
	}
	if h.Kind != "Namespace" && h.Metadata.Namespace != namespace {
		t.Errorf("%s: %s %s is in namespace %q, want %q", where, h.Kind, name, h.Metadata.Namespace, namespace)
	}
	where += " (" + h.Kind + " " + name + ")"
	gvk := h.APIVersion + "/" + h.Kind
	switch gvk {
	case "v1/Namespace":
		put(t, where, s.namespaces, name, decode[corev1.Namespace](t, where, doc))
	case "v1/ConfigMap":
		put(t, where, s.configMaps, name, decode[corev1.ConfigMap](t, where, doc))
	case "v1/Secret":
		put(t, where, s.secrets, name, decode[corev1.Secret](t, where, doc))
	case "batch/v1/Job":
		put(t, where, s.jobs, name, decode[batchv1.Job](t, where, doc))
	case "serving.knative.dev/v1/Service":
		put(t, where, s.services, name, check(t, where, decode[servingv1.Service](t, where, doc)))
	case "eventing.knative.dev/v1alpha1/KafkaSink":
		put(t, where, s.sinks, name, check(t, where, decode[kafkasink.KafkaSink](t, where, doc)))
	case "sources.knative.dev/v1beta1/KafkaSource":
		put(t, where, s.sources, name, check(t, where, decode[kafkasource.KafkaSource](t, where, doc)))
	case "flows.knative.dev/v1/Sequence":
		put(t, where, s.sequences, name, check(t, where, decode[flowsv1.Sequence](t, where, doc)))
	case "eventing.knative.dev/v1/Broker":
		b := check(t, where, decode[eventingv1.Broker](t, where, doc))
		// The Kafka broker's own admission checks, as its webhook runs them.
		stub := decode[kafkabroker.BrokerStub](t, where, doc)
		if err := stub.Validate(apis.WithinCreate(context.Background())); err != nil {
			t.Errorf("%s: Kafka broker validation: %v", where, err)
		}
		put(t, where, s.brokers, name, b)
	case "eventing.knative.dev/v1/Trigger":
		put(t, where, s.triggers, name, check(t, where, decode[eventingv1.Trigger](t, where, doc)))
	default:
		t.Errorf("%s: unexpected kind %s (add it to the test, with its Go type)", where, gvk)
	}
}

// decode is strict: unknown or duplicate fields fail.
func decode[T any](t *testing.T, where string, doc []byte) *T {
	t.Helper()
	v := new(T)
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%s: strict decode into %T: %v", where, v, err)
	}
	return v
}

// check runs SetDefaults then Validate, as the admission webhooks do.
func check[T validatable](t *testing.T, where string, v T) T {
	t.Helper()
	ctx := apis.WithinCreate(context.Background())
	v.SetDefaults(ctx)
	if err := v.Validate(ctx); err != nil {
		t.Errorf("%s: %T does not validate: %v", where, v, err)
	}
	return v
}

func put[T any](t *testing.T, where string, m map[string]*T, name string, v *T) {
	t.Helper()
	if _, dup := m[name]; dup {
		t.Errorf("%s: a second %T named %s", where, v, name)
	}
	m[name] = v
}
