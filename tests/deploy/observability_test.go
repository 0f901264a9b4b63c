package deploy

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/metrics"
)

var observability = []string{"otel-collector", "jaeger", "prometheus", "grafana"}

const collectorEndpoint = "http://otel-collector:4318"

// observabilityProject loads docker-compose.yml with the observability
// profile on and the services' traces sent to the collector, as the
// README says to start it.
func observabilityProject(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, map[string]string{
		"MONGO_EXPRESS_PASSWORD":      "test-secret",
		"OTEL_EXPORTER_OTLP_ENDPOINT": collectorEndpoint,
	}, "observability")
	if err != nil {
		t.Fatalf("docker-compose.yml with --profile observability does not load: %v", err)
	}
	return p
}

// cupcakeServices are the services running the cupcake-factory image.
func cupcakeServices() []string { return append(events.FunctionNames(), "api") }

func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

func TestComposeObservabilityProfileRunsItsServicesOnlyWhenAskedFor(t *testing.T) {
	on := observabilityProject(t)
	off := composeProject(t)
	for _, name := range observability {
		s := service(t, on, name)
		if !slices.Equal(s.Profiles, []string{"observability"}) {
			t.Errorf("service %s has profiles %v, want [observability]", name, s.Profiles)
		}
		if _, ok := off.Services[name]; ok {
			t.Errorf("service %s runs without --profile observability", name)
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %+v beyond the host's loopback", name, port)
			}
		}
	}
	for _, name := range cupcakeServices() {
		if _, ok := off.Services[name]; !ok {
			t.Errorf("service %s needs the profile", name)
		}
	}
}

func TestComposeServicesSendTracesToTheCollectorOnlyWhenTheEndpointIsSet(t *testing.T) {
	on, off := observabilityProject(t), composeProject(t)
	names := map[string]string{}
	for _, name := range cupcakeServices() {
		env := envOf(service(t, on, name))
		if env["OTEL_EXPORTER_OTLP_ENDPOINT"] != collectorEndpoint {
			t.Errorf("service %s: OTEL_EXPORTER_OTLP_ENDPOINT=%q, want %q", name, env["OTEL_EXPORTER_OTLP_ENDPOINT"], collectorEndpoint)
		}
		sn := env["OTEL_SERVICE_NAME"]
		if sn == "" || names[sn] != "" {
			t.Errorf("service %s: OTEL_SERVICE_NAME=%q, want one of its own (also %s)", name, sn, names[sn])
		}
		names[sn] = name
		for k := range env {
			if strings.HasPrefix(k, "OTEL_") && !slices.Contains([]string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_BSP_SCHEDULE_DELAY"}, k) {
				t.Errorf("service %s sets %s, which nobody checked", name, k)
			}
		}
		if v := envOf(service(t, off, name))["OTEL_EXPORTER_OTLP_ENDPOINT"]; v != "" {
			t.Errorf("service %s exports traces to %q without being asked", name, v)
		}
	}
	// The collector takes OTLP/HTTP where the services send it, and sends
	// the traces to Jaeger's OTLP port.
	var col struct {
		Receivers struct {
			OTLP struct {
				Protocols struct {
					HTTP struct{ Endpoint string } `json:"http"`
				} `json:"protocols"`
			} `json:"otlp"`
		} `json:"receivers"`
		Exporters map[string]struct{ Endpoint string } `json:"exporters"`
		Service   struct {
			Pipelines map[string]struct{ Receivers, Processors, Exporters []string } `json:"pipelines"`
		} `json:"service"`
	}
	readYAML(t, "infra/observability/otel-collector.yaml", &col)
	services, err := url.Parse(collectorEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(col.Receivers.OTLP.Protocols.HTTP.Endpoint, ":"+services.Port()) {
		t.Errorf("collector OTLP/HTTP receiver on %q, services send to %q", col.Receivers.OTLP.Protocols.HTTP.Endpoint, collectorEndpoint)
	}
	traces, ok := col.Service.Pipelines["traces"]
	if !ok || !slices.Contains(traces.Receivers, "otlp") || len(traces.Exporters) == 0 {
		t.Fatalf("collector has no traces pipeline from otlp: %+v", col.Service.Pipelines)
	}
	for _, e := range traces.Exporters {
		exp, ok := col.Exporters[e]
		if !ok {
			t.Errorf("collector pipeline names exporter %s, which is not configured", e)
		} else if exp.Endpoint != "jaeger:4317" {
			t.Errorf("collector exporter %s sends to %q, want jaeger:4317", e, exp.Endpoint)
		}
	}
}

func TestComposeObservabilityMountsFilesThatExist(t *testing.T) {
	p := observabilityProject(t)
	root := repoRoot(t)
	mounted := map[string]string{} // target → source
	for _, name := range observability {
		for _, v := range service(t, p, name).Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s, which does not exist", name, v.Source)
			}
			if !strings.HasPrefix(v.Source, filepath.Join(root, "infra", "observability")) {
				t.Errorf("service %s mounts %s, outside infra/observability", name, v.Source)
			}
			mounted[v.Target] = v.Source
		}
	}
	for _, target := range []string{"/etc/otelcol/config.yaml", "/etc/prometheus/prometheus.yml", "/etc/grafana/provisioning"} {
		if _, ok := mounted[target]; !ok {
			t.Errorf("nothing is mounted at %s", target)
		}
	}
	// Grafana's dashboard provider reads the directory the dashboard is mounted in.
	var dash struct {
		Providers []struct {
			Options struct{ Path string } `json:"options"`
		} `json:"providers"`
	}
	readYAML(t, "infra/observability/grafana/provisioning/dashboards/dashboards.yaml", &dash)
	if len(dash.Providers) != 1 {
		t.Fatalf("%d dashboard providers, want 1", len(dash.Providers))
	}
	src, ok := mounted[dash.Providers[0].Options.Path+"/cupcake-factory.json"]
	if !ok || filepath.Base(src) != "cupcake-factory.json" {
		t.Errorf("the dashboard is not mounted where the provider reads (%s): %v", dash.Providers[0].Options.Path, mounted)
	}
	// Prometheus scrapes every service running cupcake-factory.
	var prom struct {
		ScrapeConfigs []struct {
			MetricsPath   string                       `json:"metrics_path"`
			StaticConfigs []struct{ Targets []string } `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	readYAML(t, "infra/observability/prometheus.yml", &prom)
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		if sc.MetricsPath != "/metrics" {
			t.Errorf("scrape path %q, want /metrics", sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for _, name := range cupcakeServices() {
		if !slices.Contains(targets, name+":8080") {
			t.Errorf("prometheus does not scrape %s:8080 (targets %v)", name, targets)
		}
	}
}

type noOutbox struct{}

func (noOutbox) Pending(context.Context, int) ([]string, error)      { return nil, nil }
func (noOutbox) Order(context.Context, string) (domain.Order, error) { return domain.Order{}, nil }

// exportedNames are the sample names the app's /metrics has: each family,
// with _bucket, _sum and _count for histograms.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New()
	m.WatchStreams(func() int { return 0 })
	m.WatchOutbox(noOutbox{})
	m.WatchLag(func(context.Context) ([]metrics.Lag, error) {
		return []metrics.Lag{{Group: "g", Topic: "t", Partition: 0, Records: 0}}, nil
	})
	m.ObserveEvent("mixed", events.TypeMixed, "handled", time.Millisecond)
	m.ObserveRequest("GET /api/v1/orders", 200, time.Millisecond)
	m.ObserveShipped(time.Second)
	m.SSERefused()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" || f.GetType().String() == "SUMMARY" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+suffix] = true
			}
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\b(?:cupcakes|go|process)_[a-z0-9_]+\b`)

func TestTheDashboardParsesAndQueriesOnlyMetricsTheAppExports(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "infra/observability/grafana/cupcake-factory.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title      string `json:"title"`
			Type       string `json:"type"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var ds struct {
		Datasources []struct{ UID, Type, URL string } `json:"datasources"`
	}
	readYAML(t, "infra/observability/grafana/provisioning/datasources/datasources.yaml", &ds)
	uids := map[string]string{}
	for _, s := range ds.Datasources {
		uids[s.UID] = s.Type
	}
	if uids["prometheus"] != "prometheus" || uids["jaeger"] != "jaeger" {
		t.Errorf("provisioned data sources %v, want prometheus and jaeger", uids)
	}
	exported := exportedNames(t)
	used := map[string]bool{}
	for _, p := range d.Panels {
		if p.Type == "text" {
			continue
		}
		if p.Datasource == nil || uids[p.Datasource.UID] == "" {
			t.Errorf("panel %q uses a data source that is not provisioned: %+v", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, target := range p.Targets {
			names := metricName.FindAllString(target.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: %q names no metric", p.Title, target.Expr)
			}
			for _, n := range names {
				used[n] = true
				if !exported[n] {
					t.Errorf("panel %q queries %s, which the app does not export", p.Title, n)
				}
			}
		}
	}
	// What the issue asks to see: orders, stage latency, errors, outbox.
	for _, n := range []string{metrics.EventsTotal, metrics.EventDuration + "_bucket", metrics.OrderEndToEnd + "_bucket",
		metrics.HTTPRequestsTotal, metrics.OutboxPending, metrics.OutboxOldest, metrics.ConsumerLag} {
		if !used[n] {
			t.Errorf("no panel queries %s", n)
		}
	}
}
