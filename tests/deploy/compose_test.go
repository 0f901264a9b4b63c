package deploy

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// loadCompose loads docker-compose.yml as docker compose does: schema
// validation (unknown keys, bad ports, undefined depends_on targets),
// interpolation with env, anchors and merge keys resolved, and the given
// profiles on (as with --profile).
func loadCompose(t *testing.T, env map[string]string, profiles ...string) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SetProjectName("cupcake-factory", true)
		o.Profiles = profiles
	})
}

func composeProject(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, map[string]string{
		"MONGO_EXPRESS_USERNAME": "test-user",
		"MONGO_EXPRESS_PASSWORD": "test-secret",
	})
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return s
}

func envOf(s types.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
		}
	}
	return m
}

func TestComposeLoadsAndEveryLongRunningServiceHasAHealthcheck(t *testing.T) {
	p := composeProject(t)
	for name, s := range p.Services {
		if name == "kafka-init" {
			continue // one-shot; the others wait for it to complete
		}
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
			t.Errorf("service %s has no healthcheck", name)
		}
	}
}

func TestComposeKafkaIsSingleNodeKRaftWithTheContractTopics(t *testing.T) {
	p := composeProject(t)
	for name, s := range p.Services {
		if strings.Contains(s.Image, "zookeeper") || strings.Contains(name, "zookeeper") {
			t.Errorf("service %s: KRaft needs no ZooKeeper", name)
		}
	}
	kafka := service(t, p, "kafka")
	if !strings.HasPrefix(kafka.Image, "apache/kafka:") {
		t.Errorf("kafka image %s, want Apache Kafka (apache/kafka)", kafka.Image)
	}
	env := envOf(kafka)
	if roles := env["KAFKA_PROCESS_ROLES"]; roles != "broker,controller" {
		t.Errorf("KAFKA_PROCESS_ROLES=%q, want broker,controller (single-node KRaft)", roles)
	}
	if !strings.Contains(env["KAFKA_ADVERTISED_LISTENERS"], "PLAINTEXT://kafka:9092") {
		t.Errorf("kafka does not advertise kafka:9092 to the other containers: %s", env["KAFKA_ADVERTISED_LISTENERS"])
	}
	for _, port := range kafka.Ports {
		if port.HostIP != "127.0.0.1" {
			t.Errorf("kafka port %s is published beyond the host's loopback", port.Published)
		}
	}

	init := service(t, p, "kafka-init")
	if dep, ok := init.DependsOn["kafka"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("kafka-init must wait for kafka to be healthy: %+v", init.DependsOn)
	}
	if init.Restart != "no" {
		t.Errorf("kafka-init restart %q, want no (one-shot)", init.Restart)
	}
	ienv := envOf(init)
	if got := strings.Fields(ienv["TOPICS"]); !sameSet(got, contractTopics) {
		t.Errorf("kafka-init creates %v, want %v", got, contractTopics)
	}
	script := strings.Join(init.Entrypoint, " ") + " " + strings.Join(init.Command, " ")
	for _, want := range []string{"kafka-topics.sh", "--create", "--if-not-exists", "$TOPICS"} {
		if !strings.Contains(script, want) {
			t.Errorf("kafka-init script lacks %q: %s", want, script)
		}
	}
	if ienv["BOOTSTRAP"] != "kafka:9092" {
		t.Errorf("kafka-init bootstrap %q, want kafka:9092", ienv["BOOTSTRAP"])
	}
}

func TestComposeMongoExpressIsOnLoopbackWithCredentialsFromVariables(t *testing.T) {
	p := composeProject(t)
	me := service(t, p, "mongo-express")
	if len(me.Ports) == 0 {
		t.Fatal("mongo-express publishes no port")
	}
	for _, port := range me.Ports {
		if port.HostIP != "127.0.0.1" {
			t.Errorf("mongo-express port %s is published on %q, want 127.0.0.1 only", port.Published, port.HostIP)
		}
	}
	env := envOf(me)
	if env["ME_CONFIG_BASICAUTH_USERNAME"] != "test-user" || env["ME_CONFIG_BASICAUTH_PASSWORD"] != "test-secret" {
		t.Errorf("mongo-express credentials do not come from MONGO_EXPRESS_USERNAME/PASSWORD: %q/%q",
			env["ME_CONFIG_BASICAUTH_USERNAME"], env["ME_CONFIG_BASICAUTH_PASSWORD"])
	}
	if dep, ok := me.DependsOn["mongodb"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("mongo-express must wait for mongodb to be healthy")
	}
	// No default password: without the variable, compose refuses to start.
	if _, err := loadCompose(t, map[string]string{}); err == nil || !strings.Contains(err.Error(), "MONGO_EXPRESS_PASSWORD") {
		t.Errorf("docker-compose.yml loads without MONGO_EXPRESS_PASSWORD (err=%v); the password must be set by the user", err)
	}
}

func TestComposeRunsEachFunctionAndTheAPIFromOneImage(t *testing.T) {
	p := composeProject(t)
	root := repoRoot(t)
	service(t, p, "mongodb")
	var image string
	check := func(name, functions string) types.ServiceConfig {
		s := service(t, p, name)
		if image == "" {
			image = s.Image
		} else if s.Image != image {
			t.Errorf("service %s runs image %s, the others %s", name, s.Image, image)
		}
		if s.Build == nil || filepath.Clean(s.Build.Context) != root || s.Build.Dockerfile != "infra/Dockerfile" {
			t.Errorf("service %s is not built from infra/Dockerfile at the repository root: %+v", name, s.Build)
		} else if s.Build.Target != "compose" {
			t.Errorf("service %s builds target %q, want compose (the stage with wget for the healthcheck)", name, s.Build.Target)
		}
		env := envOf(s)
		want := map[string]string{
			"FUNCTIONS":      functions,
			"KAFKA_BROKERS":  "kafka:9092",
			"MONGODB_URI":    "mongodb://mongodb:27017",
			"LISTEN_ADDRESS": "0.0.0.0:8080",
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("service %s: %s=%q, want %q", name, k, env[k], v)
			}
		}
		if env["KITCHEN_MODE"] != "auto" {
			t.Errorf("service %s: KITCHEN_MODE=%q, want auto by default", name, env["KITCHEN_MODE"])
		}
		for dep, cond := range map[string]string{
			"kafka-init": types.ServiceConditionCompletedSuccessfully,
			"mongodb":    types.ServiceConditionHealthy,
		} {
			if d, ok := s.DependsOn[dep]; !ok || d.Condition != cond {
				t.Errorf("service %s: depends_on %s must be %s, got %+v", name, dep, cond, d)
			}
		}
		hc := strings.Join(s.HealthCheck.Test, " ")
		if !strings.Contains(hc, "wget") || !strings.Contains(hc, "http://127.0.0.1:8080/health/readiness") {
			t.Errorf("service %s healthcheck %q does not probe /health/readiness on 8080", name, hc)
		}
		return s
	}
	seen := map[string]bool{}
	for _, b := range events.Pipeline {
		s := check(b.Function, b.Function)
		seen[b.Function] = true
		if len(s.Ports) != 0 {
			t.Errorf("function %s publishes ports %+v; only the API is reachable", b.Function, s.Ports)
		}
	}
	api := check("api", "none")
	seen["api"] = true
	if len(api.Ports) != 1 || api.Ports[0].Target != 8080 || api.Ports[0].HostIP != "127.0.0.1" {
		t.Errorf("api ports %+v, want 127.0.0.1:<port> -> 8080", api.Ports)
	}
	if envOf(api)["SEED_DEMO"] != "true" {
		t.Error("api should seed the demo customer")
	}
	// Nothing else runs the cupcake-factory image.
	for name, s := range p.Services {
		if s.Image == image && !seen[name] {
			t.Errorf("service %s also runs the cupcake-factory image", name)
		}
	}
}

func TestDockerfileBuildsTheRunnerStaticallyWithBothRuntimes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "infra", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/cupcake-factory", "USER 65532"} {
		if !strings.Contains(df, want) {
			t.Errorf("infra/Dockerfile lacks %q", want)
		}
	}
	stages := regexp.MustCompile(`(?m)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?`).FindAllStringSubmatch(df, -1)
	names := map[string]string{}
	for _, s := range stages {
		names[s[2]] = s[1]
	}
	if !strings.HasPrefix(names["compose"], "alpine:") {
		t.Errorf("stage compose is %q, want alpine (busybox wget for compose healthchecks)", names["compose"])
	}
	if last := stages[len(stages)-1]; !strings.Contains(last[1], "distroless/static") {
		t.Errorf("the default (last) stage is %s, want distroless static", last[1])
	}
}

// TestComposeTakesTokensFromASecretFile: every cupcake-factory container
// reads its bearer tokens from the compose secret auth_tokens (a file kept
// out of git), never from its environment or the image.
func TestComposeTakesTokensFromASecretFile(t *testing.T) {
	p := composeProject(t)
	sec, ok := p.Secrets["auth_tokens"]
	if !ok {
		t.Fatal("no compose secret auth_tokens")
	}
	root := repoRoot(t)
	rel, err := filepath.Rel(root, sec.File)
	if err != nil || !strings.HasPrefix(rel, "secrets"+string(filepath.Separator)) {
		t.Errorf("auth_tokens comes from %q, want a file under secrets/", sec.File)
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".gitignore"))
	if err != nil || !strings.Contains(string(ignore), "/secrets/") {
		t.Error(".gitignore does not keep secrets/ out of git")
	}
	names := append([]string{"api"}, events.FunctionNames()...)
	for _, name := range names {
		s := service(t, p, name)
		env := envOf(s)
		if _, ok := env["AUTH_TOKENS"]; ok {
			t.Errorf("service %s has AUTH_TOKENS in its environment", name)
		}
		if env["AUTH_TOKENS_FILE"] != "/run/secrets/auth_tokens" {
			t.Errorf("service %s: AUTH_TOKENS_FILE=%q, want /run/secrets/auth_tokens", name, env["AUTH_TOKENS_FILE"])
		}
		found := false
		for _, ref := range s.Secrets {
			found = found || ref.Source == "auth_tokens"
		}
		if !found {
			t.Errorf("service %s does not mount the auth_tokens secret", name)
		}
	}
}
