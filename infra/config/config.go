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
	// KafkaConsume false is for functions Knative delivers events to over
	// HTTP (KafkaSource, Trigger): nothing is consumed, replies are returned
	// to the caller, and Kafka carries only the status-changed notifications.
	KafkaConsume bool `envconfig:"KAFKA_CONSUME" default:"true"`
	// KafkaContentMode is how produced CloudEvents are encoded: binary
	// (attributes in ce_ headers) or structured (the whole event as JSON).
	KafkaContentMode string `envconfig:"KAFKA_CONTENT_MODE" default:"binary"`
	// KafkaMaxAttempts is how often a transiently failing event is tried
	// before it is dead-lettered; the wait starts at KafkaRetryBackoff and
	// doubles up to KafkaMaxBackoff.
	KafkaMaxAttempts  int           `envconfig:"KAFKA_MAX_ATTEMPTS" default:"5"`
	KafkaRetryBackoff time.Duration `envconfig:"KAFKA_RETRY_BACKOFF" default:"200ms"`
	KafkaMaxBackoff   time.Duration `envconfig:"KAFKA_MAX_BACKOFF" default:"5s"`
	MongoURI          string        `envconfig:"MONGODB_URI"`
	MongoDatabase     string        `envconfig:"MONGODB_DATABASE" default:"cupcakes"`
	DataDir           string        `envconfig:"DATA_DIR" default:"./data"`
	// Functions lists the handlers this process runs; "none" runs none (an
	// API/UI-only process).
	Functions   []string `envconfig:"FUNCTIONS" default:"order-created,credit-validated,mixed,baked,decorated,packaged"`
	KitchenMode string   `envconfig:"KITCHEN_MODE" default:"auto"`
	// SeedDemo creates the demo customer (alice) at start-up if absent.
	SeedDemo bool       `envconfig:"SEED_DEMO" default:"true"`
	LogLevel slog.Level `envconfig:"LOG_LEVEL" default:"INFO"`
	Topics
}

// Topics are the Kafka topics, each overridable. (Embedded, so that its
// variables carry no prefix.)
type Topics struct {
	OrderRequests    string `envconfig:"TOPIC_ORDERREQUESTS" default:"orderrequests"`
	OrderValidations string `envconfig:"TOPIC_ORDERVALIDATIONS" default:"ordervalidations"`
	ReadyToBake      string `envconfig:"TOPIC_READYTOBAKE" default:"readytobake"`
	ReadyToDecorate  string `envconfig:"TOPIC_READYTODECORATE" default:"readytodecorate"`
	ReadyToPackage   string `envconfig:"TOPIC_READYTOPACKAGE" default:"readytopackage"`
	ReadyToShip      string `envconfig:"TOPIC_READYTOSHIP" default:"readytoship"`
	OrderUpdates     string `envconfig:"TOPIC_ORDERUPDATES" default:"orderupdates"`
	DeadLetters      string `envconfig:"TOPIC_DEADLETTERS" default:"deadletters"`
}

// ForType returns the topic events of type t travel on.
func (t Topics) ForType(typ string) string {
	switch typ {
	case events.TypeOrderCreated:
		return t.OrderRequests
	case events.TypeCreditValidated:
		return t.OrderValidations
	case events.TypeMixed:
		return t.ReadyToBake
	case events.TypeBaked:
		return t.ReadyToDecorate
	case events.TypeDecorated:
		return t.ReadyToPackage
	case events.TypePackaged:
		return t.ReadyToShip
	}
	return t.OrderUpdates
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
	if c.MongoURI == "" && c.DataDir == "" {
		p = append(p, "DATA_DIR must not be empty when MONGODB_URI is unset")
	}
	p = append(p, c.Trust.problems()...)
	if len(p) > 0 {
		return fmt.Errorf("invalid configuration: %s", strings.Join(p, "; "))
	}
	return nil
}

// Auto reports whether the kitchen runs by itself.
func (c Config) Auto() bool { return c.KitchenMode == KitchenAuto }
