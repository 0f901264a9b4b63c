package deploy

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kafkasink "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/eventing/v1alpha1"
	kafkasource "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/sources/v1beta1"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	eventingauth "knative.dev/eventing/pkg/auth"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/config"
)

// replies lists the event types each function can reply with (CONTRACT.md:
// the auto-mode reply, and credit-validated's cancellation): the contract,
// written out here to check events.Pipeline, which everything else derives
// from, against it.
var replies = map[string][]string{
	events.FuncOrderCreated:    {events.TypeCreditValidated, events.TypeCancelled}, // cancelled: a cancel-requested
	events.FuncCreditValidated: {events.TypeMixed, events.TypeCancelled},
	events.FuncMixed:           {events.TypeBaked},
	events.FuncBaked:           {events.TypeDecorated},
	events.FuncDecorated:       {events.TypePackaged},
	events.FuncPackaged:        {events.TypeShipped},
}

// notificationTypes are the types only the orderupdates topic carries.
var notificationTypes = []string{events.TypeShipped, events.TypeCancelled, events.TypeFailed, events.TypeStatusChanged}

// defaultTopics are the contract topics, as the product's configuration
// names them by default.
var defaultTopics config.Config

var contractTopics = []string{
	events.TopicOrderRequests, events.TopicOrderValidations, events.TopicReadyToBake,
	events.TopicReadyToDecorate, events.TopicReadyToPackage, events.TopicReadyToShip,
	events.TopicOrderUpdates, events.TopicDeadLetters,
}

// topicOf is where an event of type typ travels (the product's own routing).
func topicOf(typ string) string { return defaultTopics.ForType(typ) }

func TestReplyTableMatchesTheContract(t *testing.T) {
	if len(replies) != len(events.Pipeline) {
		t.Fatalf("replies table has %d functions, the contract %d", len(replies), len(events.Pipeline))
	}
	for _, b := range events.Pipeline {
		if topicOf(b.Takes) != b.Topic {
			t.Errorf("%s: config routes %s to %s, the bindings say %s", b.Function, b.Takes, topicOf(b.Takes), b.Topic)
		}
		if !slices.Equal(events.RepliesOf(b), replies[b.Function]) {
			t.Errorf("%s: the pipeline says it replies %v, the contract %v", b.Function, events.RepliesOf(b), replies[b.Function])
		}
	}
}

func TestEveryManifestDecodesStrictlyAndValidates(t *testing.T) {
	// loadManifests fails the test on any strict-decode, SetDefaults or
	// Validate problem; load each flavour on top of the base.
	for _, flavour := range []string{"source", "broker"} {
		t.Run(flavour, func(t *testing.T) { loadManifests(t, "base", flavour) })
	}
}

func TestBaseHasNamespaceConfigTopicsSinksAndServices(t *testing.T) {
	s := loadManifests(t, "base")
	if s.namespaces[namespace] == nil {
		t.Errorf("no Namespace %s", namespace)
	}
	// The base alone routes nothing: no sources, sequences, brokers or triggers.
	if n := len(s.sources) + len(s.sequences) + len(s.brokers) + len(s.triggers); n != 0 {
		t.Errorf("base has %d routing objects; they belong to a flavour", n)
	}
	// A KafkaSink per contract topic, on the shared bootstrap servers.
	for _, topic := range contractTopics {
		if sink := s.sinkForTopic(topic); sink == nil {
			t.Errorf("no KafkaSink for topic %s", topic)
		} else if !slices.Equal(sink.Spec.BootstrapServers, []string{bootstrap}) {
			t.Errorf("KafkaSink %s: bootstrap servers %v, want [%s]", sink.Name, sink.Spec.BootstrapServers, bootstrap)
		}
	}
	// The topics job creates every contract topic.
	job := s.jobs["create-topics"]
	if job == nil {
		t.Fatal("no Job create-topics")
	}
	c := job.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if got := strings.Fields(env["TOPICS"]); !sameSet(got, contractTopics) {
		t.Errorf("create-topics creates %v, want %v", got, contractTopics)
	}
	if env["BOOTSTRAP"] != bootstrap {
		t.Errorf("create-topics bootstrap %q, want %q", env["BOOTSTRAP"], bootstrap)
	}
	if !strings.Contains(strings.Join(c.Args, " "), "--if-not-exists") {
		t.Error("create-topics is not idempotent (--if-not-exists)")
	}
	// The function services and the API service.
	for _, b := range events.Pipeline {
		s.checkFunctionService(t, b.Function)
	}
	s.checkAPIService(t)
}

// TestSourceFlavourWiring: KafkaSource (contract topic) -> Sequence -> the
// function's Service -> reply -> KafkaSink of the reply type's topic.
func TestSourceFlavourWiring(t *testing.T) {
	s := loadManifests(t, "base", "source")
	if len(s.brokers)+len(s.triggers) != 0 {
		t.Error("the source flavour must not contain a Broker or Triggers")
	}
	for _, b := range events.Pipeline {
		t.Run(b.Function, func(t *testing.T) {
			var src *kafkasource.KafkaSource
			for _, ks := range s.sources {
				if slices.Contains(ks.Spec.Topics, b.Topic) {
					if src != nil {
						t.Fatalf("two KafkaSources read %s: %s and %s (every event would be handled twice)", b.Topic, src.Name, ks.Name)
					}
					src = ks
				}
			}
			if src == nil {
				t.Fatalf("no KafkaSource reads %s", b.Topic)
			}
			if !slices.Equal(src.Spec.Topics, []string{b.Topic}) {
				t.Errorf("KafkaSource %s reads %v, want only %s", src.Name, src.Spec.Topics, b.Topic)
			}
			s.checkSource(t, src)
			// The source's sink is a one-step Sequence whose step is the function.
			ref := src.Spec.Sink.Ref
			if ref == nil || ref.Kind != "Sequence" || ref.APIVersion != "flows.knative.dev/v1" {
				t.Fatalf("KafkaSource %s sink %+v, want a flows.knative.dev/v1 Sequence (a KafkaSource drops replies)", src.Name, src.Spec.Sink)
			}
			seq := s.sequences[ref.Name]
			if seq == nil {
				t.Fatalf("KafkaSource %s sinks to missing Sequence %s", src.Name, ref.Name)
			}
			if len(seq.Spec.Steps) != 1 {
				t.Fatalf("Sequence %s has %d steps, want 1", seq.Name, len(seq.Spec.Steps))
			}
			step := seq.Spec.Steps[0]
			if svc := s.serviceRef(step.Destination); svc != b.Function {
				t.Errorf("Sequence %s step goes to %+v, want Service %s", seq.Name, step.Destination, b.Function)
			}
			s.checkDelivery(t, "Sequence "+seq.Name+" step", step.Delivery)
			if ct := seq.Spec.ChannelTemplate; ct == nil || ct.Kind != "KafkaChannel" {
				t.Errorf("Sequence %s: channel template %+v, want KafkaChannel (durable)", seq.Name, ct)
			}
			// Every reply type reaches its topic.
			if seq.Spec.Reply == nil {
				t.Fatalf("Sequence %s has no reply destination: the replies of %s are lost", seq.Name, b.Function)
			}
			types := replies[b.Function]
			if sink := s.sinkRef(*seq.Spec.Reply); sink != "" {
				// A KafkaSink writes every reply to one topic: only right when
				// the function has one reply type.
				if len(types) != 1 {
					t.Fatalf("%s replies %v (more than one topic) but its reply goes to one KafkaSink %s", b.Function, types, sink)
				}
				if got, want := s.sinks[sink].Spec.Topic, topicOf(types[0]); got != want {
					t.Errorf("%s replies %s: routed to topic %s, want %s", b.Function, types[0], got, want)
				}
			} else if s.serviceRef(*seq.Spec.Reply) == apiService {
				// The API service publishes each event on its type's topic
				// (KAFKA_BROKERS set, FUNCTIONS=none: it handles none itself).
				s.checkAPIService(t)
			} else {
				t.Errorf("Sequence %s reply %+v is neither a KafkaSink nor the API service", seq.Name, seq.Spec.Reply)
			}
		})
	}
}

// TestBrokerFlavourWiring: a Kafka Broker, one Trigger per event type; the
// handled types go to their function, replies re-enter the Broker, the
// notification types go to the orderupdates KafkaSink.
func TestBrokerFlavourWiring(t *testing.T) {
	s := loadManifests(t, "base", "broker")
	if len(s.sequences) != 0 {
		t.Error("the broker flavour must not contain Sequences")
	}
	if len(s.brokers) != 1 {
		t.Fatalf("want one Broker, got %d", len(s.brokers))
	}
	var broker *eventingv1.Broker
	for _, b := range s.brokers {
		broker = b
	}
	if class := broker.Annotations[eventingv1.BrokerClassAnnotationKey]; class != "Kafka" {
		t.Errorf("Broker class %q, want Kafka", class)
	}
	if cfg := broker.Spec.Config; cfg == nil || cfg.Kind != "ConfigMap" || s.configMaps[cfg.Name] == nil {
		t.Errorf("Broker config %+v does not name a ConfigMap in the manifests", cfg)
	} else if got := s.configMaps[cfg.Name].Data["bootstrap.servers"]; got != bootstrap {
		t.Errorf("Broker config bootstrap.servers %q, want %q", got, bootstrap)
	}
	s.checkDelivery(t, "Broker", broker.Spec.Delivery)

	byType := map[string]*eventingv1.Trigger{}
	for _, tr := range s.triggers {
		if tr.Spec.Broker != broker.Name {
			t.Errorf("Trigger %s on broker %q, want %q", tr.Name, tr.Spec.Broker, broker.Name)
		}
		typ := triggerType(tr)
		if typ == "" {
			t.Errorf("Trigger %s does not filter on exactly one type", tr.Name)
			continue
		}
		if other := byType[typ]; other != nil {
			t.Errorf("Triggers %s and %s both take %s (handled twice)", other.Name, tr.Name, typ)
		}
		byType[typ] = tr
		if tr.Annotations["kafka.eventing.knative.dev/delivery.order"] != "ordered" {
			t.Errorf("Trigger %s is not ordered", tr.Name)
		}
		s.checkDelivery(t, "Trigger "+tr.Name, tr.Spec.Delivery)
	}
	for _, b := range events.Pipeline {
		tr := byType[b.Takes]
		if tr == nil {
			t.Errorf("no Trigger for %s", b.Takes)
			continue
		}
		if svc := s.serviceRef(tr.Spec.Subscriber); svc != b.Function {
			t.Errorf("Trigger %s delivers %s to %+v, want Service %s", tr.Name, b.Takes, tr.Spec.Subscriber, b.Function)
		}
	}
	for _, typ := range notificationTypes {
		tr := byType[typ]
		if tr == nil {
			t.Errorf("no Trigger for %s", typ)
			continue
		}
		if sink := s.sinkRef(tr.Spec.Subscriber); sink == "" || s.sinks[sink].Spec.Topic != topicOf(typ) {
			t.Errorf("Trigger %s delivers %s to %+v, want the KafkaSink of %s", tr.Name, typ, tr.Spec.Subscriber, topicOf(typ))
		}
	}
	// Every reply type re-enters the Broker and has a Trigger: its route.
	for fn, types := range replies {
		for _, typ := range types {
			if byType[typ] == nil {
				t.Errorf("%s replies %s but no Trigger takes it", fn, typ)
			}
		}
	}
	// Kafka ingress: the topics the API service and curl write to are carried
	// into the Broker, and none a Trigger writes to (that would loop).
	written := map[string]bool{}
	for _, tr := range s.triggers {
		if sink := s.sinkRef(tr.Spec.Subscriber); sink != "" {
			written[s.sinks[sink].Spec.Topic] = true
		}
	}
	read := map[string]bool{}
	for _, src := range s.sources {
		s.checkSource(t, src)
		if ref := src.Spec.Sink.Ref; ref == nil || ref.Kind != "Broker" || ref.Name != broker.Name {
			t.Errorf("KafkaSource %s sinks to %+v, want the Broker", src.Name, src.Spec.Sink)
		}
		for _, topic := range src.Spec.Topics {
			if read[topic] {
				t.Errorf("topic %s read twice", topic)
			}
			read[topic] = true
			if written[topic] {
				t.Errorf("KafkaSource %s reads %s, which a Trigger writes to: a loop", src.Name, topic)
			}
		}
	}
	for _, b := range events.Pipeline {
		if !read[b.Topic] {
			t.Errorf("events published on %s (by the API service) never reach the Broker", b.Topic)
		}
	}
}

func triggerType(tr *eventingv1.Trigger) string {
	var types []string
	if tr.Spec.Filter != nil {
		for k, v := range tr.Spec.Filter.Attributes {
			if k == "type" {
				types = append(types, v)
			} else {
				return ""
			}
		}
	}
	for _, f := range tr.Spec.Filters {
		if len(f.Exact) != 1 || f.Exact["type"] == "" {
			return ""
		}
		types = append(types, f.Exact["type"])
	}
	if len(types) != 1 {
		return ""
	}
	return types[0]
}

func (s *set) sinkForTopic(topic string) *kafkasink.KafkaSink {
	for _, sink := range s.sinks {
		if sink.Spec.Topic == topic {
			return sink
		}
	}
	return nil
}

// serviceRef is the name of the Knative Service in the manifests that d
// points at, or "".
func (s *set) serviceRef(d duckv1.Destination) string {
	if d.Ref == nil || d.URI != nil || d.Ref.APIVersion != "serving.knative.dev/v1" || d.Ref.Kind != "Service" {
		return ""
	}
	if s.services[d.Ref.Name] == nil {
		return ""
	}
	return d.Ref.Name
}

// sinkRef is the name of the KafkaSink in the manifests that d points at, or "".
func (s *set) sinkRef(d duckv1.Destination) string {
	if d.Ref == nil || d.URI != nil || d.Ref.APIVersion != "eventing.knative.dev/v1alpha1" || d.Ref.Kind != "KafkaSink" {
		return ""
	}
	if s.sinks[d.Ref.Name] == nil {
		return ""
	}
	return d.Ref.Name
}

// checkSource: shared bootstrap servers, ordered, retried, dead-lettered.
func (s *set) checkSource(t *testing.T, src *kafkasource.KafkaSource) {
	t.Helper()
	if !slices.Equal(src.Spec.BootstrapServers, []string{bootstrap}) {
		t.Errorf("KafkaSource %s: bootstrap servers %v, want [%s]", src.Name, src.Spec.BootstrapServers, bootstrap)
	}
	if src.Spec.Ordering == nil || *src.Spec.Ordering != kafkasource.Ordered {
		t.Errorf("KafkaSource %s: delivery is not ordered", src.Name)
	}
	if src.Spec.ConsumerGroup == "" {
		t.Errorf("KafkaSource %s: no consumer group", src.Name)
	}
	s.checkDelivery(t, "KafkaSource "+src.Name, src.Spec.Delivery)
}

// checkDelivery: retries with a backoff, then the deadletters topic.
func (s *set) checkDelivery(t *testing.T, what string, d *eventingduckv1.DeliverySpec) {
	t.Helper()
	if d == nil {
		t.Errorf("%s: no delivery spec (retry, backoff, dead-letter sink)", what)
		return
	}
	if d.Retry == nil || *d.Retry < 1 {
		t.Errorf("%s: no retries", what)
	}
	if d.BackoffPolicy == nil || *d.BackoffPolicy != eventingduckv1.BackoffPolicyExponential || d.BackoffDelay == nil {
		t.Errorf("%s: no exponential backoff with a delay", what)
	}
	if d.DeadLetterSink == nil {
		t.Errorf("%s: no dead-letter sink", what)
	} else if sink := s.sinkRef(*d.DeadLetterSink); sink == "" || s.sinks[sink].Spec.Topic != events.TopicDeadLetters {
		t.Errorf("%s: dead-letter sink %+v is not the KafkaSink of %s", what, d.DeadLetterSink, events.TopicDeadLetters)
	}
}

// env resolves a container's environment: explicit env over envFrom, as
// Kubernetes does. A value from a Secret reads "secret:<name>/<key>" and must
// exist in the manifests.
func (s *set) env(t *testing.T, svc *servingv1.Service) map[string]string {
	t.Helper()
	containers := svc.Spec.Template.Spec.Containers
	if len(containers) != 1 {
		t.Fatalf("Service %s: %d containers, want 1", svc.Name, len(containers))
	}
	c := containers[0]
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			t.Errorf("Service %s: envFrom other than a ConfigMap", svc.Name)
			continue
		}
		cm := s.configMaps[from.ConfigMapRef.Name]
		if cm == nil {
			t.Errorf("Service %s: envFrom ConfigMap %s is not in the manifests", svc.Name, from.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = s.secretValue(t, svc.Name, e.ValueFrom.SecretKeyRef)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := s.configMaps[ref.Name]
			if cm == nil || cm.Data[ref.Key] == "" {
				t.Errorf("Service %s: %s from missing ConfigMap key %s/%s", svc.Name, e.Name, ref.Name, ref.Key)
			} else {
				env[e.Name] = cm.Data[ref.Key]
			}
		default:
			t.Errorf("Service %s: %s from an unsupported source", svc.Name, e.Name)
		}
	}
	return env
}

// outOfBand are Secrets the manifests refer to but never hold: their
// values are made where the system is deployed (name → how).
var outOfBand = map[string]string{authSecret: "make auth-secret"}

func (s *set) secretValue(t *testing.T, who string, ref *corev1.SecretKeySelector) string {
	t.Helper()
	sec := s.secrets[ref.Name]
	if how, ok := outOfBand[ref.Name]; ok && sec == nil {
		return "out-of-band secret " + ref.Name + "/" + ref.Key + " (" + how + ")"
	}
	if sec == nil {
		t.Errorf("%s: Secret %s is not in the manifests", who, ref.Name)
		return ""
	}
	if v, ok := sec.StringData[ref.Key]; ok && v != "" {
		return v
	}
	if v, ok := sec.Data[ref.Key]; ok && len(v) > 0 {
		return string(v)
	}
	t.Errorf("%s: Secret %s has no key %s", who, ref.Name, ref.Key)
	return ""
}

func (s *set) checkProbes(t *testing.T, svc *servingv1.Service) {
	t.Helper()
	c := svc.Spec.Template.Spec.Containers[0]
	for what, p := range map[string]*corev1.Probe{"/health/readiness": c.ReadinessProbe, "/health/liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != what {
			t.Errorf("Service %s: no httpGet probe on %s", svc.Name, what)
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("Service %s: ports %+v, want 8080", svc.Name, c.Ports)
	}
}

// checkFunctionService: the runner image (its HTTP front door checks
// Knative's OIDC token; the kn func runtime cannot) with FUNCTIONS=<fn>,
// MongoDB, KAFKA_CONSUME=false (events come over HTTP, the reply goes back
// to the caller; Kafka carries only its notifications), and OIDC for its
// own audience.
func (s *set) checkFunctionService(t *testing.T, fn string) {
	t.Helper()
	svc := s.services[fn]
	if svc == nil {
		t.Errorf("no Knative Service %s", fn)
		return
	}
	if img := svc.Spec.Template.Spec.Containers[0].Image; img != runnerImage {
		t.Errorf("Service %s runs %s, want the runner image %s (the kn func runtime cannot check tokens)", fn, img, runnerImage)
	}
	env := s.env(t, svc)
	if env["FUNCTIONS"] != fn {
		t.Errorf("Service %s: FUNCTIONS=%q, want %q", fn, env["FUNCTIONS"], fn)
	}
	if env["KAFKA_CONSUME"] != "false" {
		t.Errorf("Service %s: KAFKA_CONSUME=%q; Knative delivers its events, it must not consume them itself", fn, env["KAFKA_CONSUME"])
	}
	if env["KAFKA_BROKERS"] != bootstrap {
		t.Errorf("Service %s: KAFKA_BROKERS=%q, want %q (for its notifications)", fn, env["KAFKA_BROKERS"], bootstrap)
	}
	if !strings.HasPrefix(env["MONGODB_URI"], "mongodb") {
		t.Errorf("Service %s: MONGODB_URI=%q", fn, env["MONGODB_URI"])
	}
	if svc.Labels["networking.knative.dev/visibility"] != "cluster-local" {
		t.Errorf("Service %s is reachable from outside the cluster", fn)
	}
	s.checkOIDC(t, svc, env)
	s.checkProbes(t, svc)
}

// checkAPIService: the runner image, FUNCTIONS=none, Kafka and MongoDB set.
func (s *set) checkAPIService(t *testing.T) {
	t.Helper()
	svc := s.services[apiService]
	if svc == nil {
		t.Errorf("no Knative Service %s", apiService)
		return
	}
	if img := svc.Spec.Template.Spec.Containers[0].Image; img != runnerImage {
		t.Errorf("Service %s runs %s, want the runner image %s", apiService, img, runnerImage)
	}
	env := s.env(t, svc)
	if env["FUNCTIONS"] != "none" {
		t.Errorf("Service %s: FUNCTIONS=%q, want none", apiService, env["FUNCTIONS"])
	}
	if env["KAFKA_BROKERS"] != bootstrap {
		t.Errorf("Service %s: KAFKA_BROKERS=%q, want %q", apiService, env["KAFKA_BROKERS"], bootstrap)
	}
	if !strings.HasPrefix(env["MONGODB_URI"], "mongodb") {
		t.Errorf("Service %s: MONGODB_URI=%q", apiService, env["MONGODB_URI"])
	}
	if !strings.HasPrefix(env["AUTH_TOKENS"], "out-of-band secret "+authSecret+"/AUTH_TOKENS") {
		t.Errorf("Service %s: AUTH_TOKENS=%q, want it from the Secret %s that make auth-secret creates", apiService, env["AUTH_TOKENS"], authSecret)
	}
	s.checkOIDC(t, svc, env)
	s.checkProbes(t, svc)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// authSecret holds AUTH_TOKENS; only `make auth-secret` (or the operator)
// creates it, so no token is ever in the repository or an image.
const authSecret = "cupcake-factory-auth"

// audienceOf is the OIDC audience of a Knative Service, as Knative
// Eventing names audiences (<group>/<kind>/<namespace>/<name>).
func audienceOf(name string) string {
	return eventingauth.GetAudience(servingv1.SchemeGroupVersion.WithKind("Service"), metav1.ObjectMeta{Namespace: namespace, Name: name})
}

// checkOIDC: JWTs from the cluster's service-account issuer, for this
// service's own audience; only this namespace's service accounts are the
// events role.
func (s *set) checkOIDC(t *testing.T, svc *servingv1.Service, env map[string]string) {
	t.Helper()
	if u, err := url.Parse(env["OIDC_ISSUER"]); err != nil || u.Scheme != "https" || u.Host == "" {
		t.Errorf("Service %s: OIDC_ISSUER=%q, want the cluster's https issuer", svc.Name, env["OIDC_ISSUER"])
	}
	if env["OIDC_AUDIENCE"] != audienceOf(svc.Name) {
		t.Errorf("Service %s: OIDC_AUDIENCE=%q, want %q", svc.Name, env["OIDC_AUDIENCE"], audienceOf(svc.Name))
	}
	if got := env["OIDC_EVENTS_SUBJECTS"]; got != "system:serviceaccount:"+namespace+":*" {
		t.Errorf("Service %s: OIDC_EVENTS_SUBJECTS=%q, want only this namespace's service accounts", svc.Name, got)
	}
}

// TestEveryDeliveryToAServiceNamesTheAudienceItChecks: Knative Serving
// announces no OIDC audience, so each destination that is a Service must
// name it, or Knative would send no token and the service would refuse.
func TestEveryDeliveryToAServiceNamesTheAudienceItChecks(t *testing.T) {
	for _, flavour := range []string{"source", "broker"} {
		t.Run(flavour, func(t *testing.T) {
			s := loadManifests(t, "base", flavour)
			var dests []struct {
				where string
				d     duckv1.Destination
			}
			add := func(where string, d duckv1.Destination) {
				dests = append(dests, struct {
					where string
					d     duckv1.Destination
				}{where, d})
			}
			for _, q := range s.sequences {
				for i, st := range q.Spec.Steps {
					add(fmt.Sprintf("Sequence %s step %d", q.Name, i), st.Destination)
				}
				if q.Spec.Reply != nil {
					add("Sequence "+q.Name+" reply", *q.Spec.Reply)
				}
			}
			for _, tr := range s.triggers {
				add("Trigger "+tr.Name, tr.Spec.Subscriber)
			}
			for _, src := range s.sources {
				add("KafkaSource "+src.Name, src.Spec.Sink)
			}
			n := 0
			for _, d := range dests {
				svc := s.serviceRef(d.d)
				if svc == "" {
					continue
				}
				n++
				want := audienceOf(svc)
				if d.d.Audience == nil || *d.d.Audience != want {
					t.Errorf("%s delivers to Service %s with audience %v, want %q", d.where, svc, d.d.Audience, want)
				}
				if got := s.env(t, s.services[svc])["OIDC_AUDIENCE"]; got != want {
					t.Errorf("Service %s checks audience %q, %s sends tokens for %q", svc, got, d.where, want)
				}
			}
			if n < len(events.Pipeline) {
				t.Errorf("only %d deliveries to Services found", n)
			}
		})
	}
}

// TestNoTokenIsInTheManifests: AUTH_TOKENS only ever comes from a Secret
// reference, never a literal, and the manifests ship no such Secret.
func TestNoTokenIsInTheManifests(t *testing.T) {
	s := loadManifests(t, "base", "source", "broker", "func")
	if s.secrets[authSecret] != nil {
		t.Errorf("the manifests hold the Secret %s: tokens would be in the repository", authSecret)
	}
	for _, svc := range s.services {
		for _, c := range svc.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name != "AUTH_TOKENS" && e.Name != "AUTH_TOKENS_FILE" {
					continue
				}
				if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Errorf("Service %s: %s is not taken from a Secret", svc.Name, e.Name)
				} else if o := e.ValueFrom.SecretKeyRef.Optional; o != nil && *o {
					t.Errorf("Service %s: %s is optional: without the Secret it would run open", svc.Name, e.Name)
				}
			}
		}
	}
	for _, cm := range s.configMaps {
		for k := range cm.Data {
			if strings.HasPrefix(k, "AUTH_TOKENS") {
				t.Errorf("ConfigMap %s holds %s", cm.Name, k)
			}
		}
	}
}
