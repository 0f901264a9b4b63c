// Package config reads the whole configuration from the environment, once,
// with envconfig, and checks it before anything starts.
package config

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// Kitchen modes.
const (
	KitchenAuto   = "auto"
	KitchenManual = "manual"
)

// Config is every setting, with its environment variable and default.
type Config struct {
	// Trust: AUTH_TOKENS, OIDC_*, MAX_SSE_CLIENTS (trust.go).
	Trust

	ListenAddress string   `envconfig:"LISTEN_ADDRESS" default:"127.0.0.1:8080"`
	KafkaBrokers  []string `envconfig:"KAFKA_BROKERS"`
	// KafkaGroupPrefix names consumer groups: <prefix>-<function>.
	KafkaGroupPrefix string `envconfig:"KAFKA_GROUP_PREFIX" default:"cupcake-factory"`
	// KafkaInstanceID, if set, makes this process a static member of its
	// consumer groups (<id>-<function>): restarted with the same id, it takes
	// its partitions back at once instead of after the dead member's session
	// timeout. It must be stable per replica and unique among replicas (a
	// StatefulSet pod name, a docker-compose service name).
	KafkaInstanceID string `envconfig:"KAFKA_INSTANCE_ID"`
	// KafkaConsume false is for functions Knative delivers events to over
	// HTTP (KafkaSource, Trigger): nothing is consumed, replies are returned
	// to the caller, and Kafka carries only the status-changed notifications.
	KafkaConsume bool `envconfig:"KAFKA_CONSUME" default:"true"`
	// KafkaContentMode is how produced CloudEvents are encoded: binary
	// (attributes in ce_ headers) or structured (the whole event as JSON).
	KafkaContentMode string `envconfig:"KAFKA_CONTENT_MODE" default:"binary"`
	// KafkaMaxInFlight bounds the records of one partition a consumer holds
	// at once (running, or waiting behind an earlier one of their order).
	KafkaMaxInFlight int `envconfig:"KAFKA_MAX_IN_FLIGHT" default:"256"`
	// KafkaMaxAttempts is how often a transiently failing event is tried
	// before it is dead-lettered; the wait starts at KafkaRetryBackoff and
	// doubles up to KafkaMaxBackoff.
	KafkaMaxAttempts  int           `envconfig:"KAFKA_MAX_ATTEMPTS" default:"5"`
	KafkaRetryBackoff time.Duration `envconfig:"KAFKA_RETRY_BACKOFF" default:"200ms"`
	KafkaMaxBackoff   time.Duration `envconfig:"KAFKA_MAX_BACKOFF" default:"5s"`
	MongoURI          string        `envconfig:"MONGODB_URI"`
	MongoDatabase     string        `envconfig:"MONGODB_DATABASE" default:"cupcakes"`
	DataDir           string        `envconfig:"DATA_DIR" default:"./data"`
	// Functions lists the handlers this process runs: all of
	// events.Pipeline when unset; "none" runs none (an API/UI-only process).
	Functions   []string `envconfig:"FUNCTIONS"`
	KitchenMode string   `envconfig:"KITCHEN_MODE" default:"auto"`
	// SeedDemo creates the demo customer (alice) at start-up if absent.
	SeedDemo bool       `envconfig:"SEED_DEMO" default:"true"`
	LogLevel slog.Level `envconfig:"LOG_LEVEL" default:"INFO"`
	// AllowPartialEmbeddedStore lets FUNCTIONS name only some functions
	// while the store is this process's own embedded one. Refused by
	// default: functions split over processes must share one store
	// (MONGODB_URI), or each process's steps fail on orders it never saw.
	// Tests set it to look at what each process alone consumed.
	AllowPartialEmbeddedStore bool `envconfig:"ALLOW_PARTIAL_EMBEDDED_STORE" default:"false"`
	// Topics renames topics: "default:actual" pairs, a default being a
	// topic of events.Pipeline, orderupdates or deadletters
	// (KAFKA_TOPICS=orderrequests:shop-orders,deadletters:dlq).
	Topics map[string]string `envconfig:"KAFKA_TOPICS"`
}

// Topic returns the topic the default topic name is renamed to.
func (c Config) Topic(name string) string {
	if t, ok := c.Topics[name]; ok {
		return t
	}
	return name
}

// ForType returns the topic events of type t travel on.
func (c Config) ForType(t string) string { return c.Topic(events.TopicOf(t)) }

// DeadLetters returns the dead-letter topic.
func (c Config) DeadLetters() string { return c.Topic(events.TopicDeadLetters) }

// OrderUpdates returns the topic of notifications.
func (c Config) OrderUpdates() string { return c.Topic(events.TopicOrderUpdates) }

// knownTopics are the default topic names KAFKA_TOPICS may rename.
func knownTopics() []string {
	out := []string{events.TopicOrderUpdates, events.TopicDeadLetters}
	for _, s := range events.Pipeline {
		out = append(out, s.Topic)
	}
	return out
}

// Load reads the configuration from the environment and checks it.
func Load() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("read configuration: %w", err)
	}
	c.normalise()
	c.Trust.normalise()
	return c, c.Validate()
}

func (c *Config) normalise() {
	var fns []string
	for _, f := range c.Functions {
		if f = strings.TrimSpace(f); f != "" && f != "none" && !slices.Contains(fns, f) {
			fns = append(fns, f)
		}
	}
	if len(c.Functions) == 0 {
		fns = events.FunctionNames()
	}
	c.Functions = fns
	var brokers []string
	for _, b := range c.KafkaBrokers {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	c.KafkaBrokers = brokers
}

// Validate says clearly what is wrong with a configuration.
func (c Config) Validate() error {
	var p []string
	if c.ListenAddress == "" {
		p = append(p, "LISTEN_ADDRESS must not be empty")
	}
	if c.KitchenMode != KitchenAuto && c.KitchenMode != KitchenManual {
		p = append(p, fmt.Sprintf("KITCHEN_MODE must be %q or %q, got %q", KitchenAuto, KitchenManual, c.KitchenMode))
	}
	for _, f := range c.Functions {
		if !slices.Contains(events.FunctionNames(), f) {
			p = append(p, fmt.Sprintf("FUNCTIONS: unknown function %q (known: %s, or none)", f, strings.Join(events.FunctionNames(), ", ")))
		}
	}
	if c.KafkaContentMode != "binary" && c.KafkaContentMode != "structured" {
		p = append(p, fmt.Sprintf("KAFKA_CONTENT_MODE must be binary or structured, got %q", c.KafkaContentMode))
	}
	if c.KafkaMaxAttempts < 1 || c.KafkaRetryBackoff <= 0 || c.KafkaMaxBackoff < c.KafkaRetryBackoff {
		p = append(p, "KAFKA_MAX_ATTEMPTS must be at least 1, KAFKA_RETRY_BACKOFF positive and KAFKA_MAX_BACKOFF not below it")
	}
	if c.KafkaMaxInFlight < 1 {
		p = append(p, fmt.Sprintf("KAFKA_MAX_IN_FLIGHT must be at least 1, got %d", c.KafkaMaxInFlight))
	}
	for name := range c.Topics {
		if !slices.Contains(knownTopics(), name) {
			p = append(p, fmt.Sprintf("KAFKA_TOPICS: unknown topic %q (known: %s)", name, strings.Join(knownTopics(), ", ")))
		}
	}
	if c.MongoURI == "" && c.DataDir == "" {
		p = append(p, "DATA_DIR must not be empty when MONGODB_URI is unset")
	}
	if c.MongoURI == "" && len(c.Functions) < len(events.FunctionNames()) && !c.AllowPartialEmbeddedStore {
		named := strings.Join(c.Functions, ",")
		if named == "" {
			named = "none"
		}
		p = append(p, fmt.Sprintf("FUNCTIONS=%s runs only part of the pipeline, but the store is this process's own embedded one "+
			"(MONGODB_URI is unset): functions in other processes cannot see its orders, and theirs would fail with "+
			"\"order not found\" and be dead-lettered; set MONGODB_URI so that every process shares one store, "+
			"or leave FUNCTIONS unset to run all functions here", named))
	}
	p = append(p, c.Trust.problems()...)
	if len(p) > 0 {
		return fmt.Errorf("invalid configuration: %s", strings.Join(p, "; "))
	}
	return nil
}

// Auto reports whether the kitchen runs by itself.
func (c Config) Auto() bool { return c.KitchenMode == KitchenAuto }
