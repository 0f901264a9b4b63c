// Command bench measures cupcake-factory as a shop uses it: the real
// binary, orders placed over REST, each one followed on the notification
// stream until it has shipped; its end-to-end time is from placing it to
// the shipped step as stored, and the stream's own delay is reported
// beside it. It reports, in one run on one machine:
//
//   - full orders per second, saturated (a fixed number of orders in flight,
//     128 by default: each is in flight until the client sees it shipped on
//     the notification stream, which batches for up to 50 ms, so with fewer
//     the client's own waiting, not the system, bounds the figure), in-process
//     with the durable embedded store and over Kafka, and the system's CPU
//     time per order;
//   - end-to-end latency p50 / p99 at a fixed offered rate;
//   - the strongest plain baselines through the same broker and disk:
//     sarama's asynchronous, batching, idempotent producer with a consumer
//     group, and bbolt's group commit, with the ratios against them;
//   - growth: 10 000 orders for one customer, orders per second per
//     thousand, and the latency of a page of 50 with 20 000 orders stored.
//
// -only replicas (make bench-replicas) measures instead 1 and -replicas N
// replicas on Apache Kafka sharing FerretDB behind the tests' proxy (see
// replicas.go): orders/s, p99, MongoDB commands per order, dead letters.
//
// The broker is kfake in this process unless -brokers names one (Apache
// Kafka, say); it must have the contract's topics. Each criterion of the
// issue that asked for these figures is printed PASS or FAIL; the exit
// status is 0 either way (these are measurements, not tests).
//
//	cd tests && go run ./cmd/bench
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/runner"
)

// recordsPerOrder is what one full order puts on Kafka: order.created,
// credit-validated, mixed, baked, decorated, packaged, shipped, and a
// status-changed notification for each of the seven states.
const recordsPerOrder = 7 + 7

// flow is the happy path of an order.
var flow = []string{
	events.StatusCreated, events.StatusApproved, events.StatusMixed, events.StatusBaked,
	events.StatusDecorated, events.StatusPackaged, events.StatusShipped,
}

type options struct {
	orders, inFlight, rate int
	offerFor               time.Duration
	growth, stored         int
	brokers                string
	partitions             int
	only                   string
	replicas               int
	replicaOrders          int
	replicaRate            int
}

func main() {
	var o options
	flag.IntVar(&o.orders, "orders", 3000, "orders per saturated run")
	flag.IntVar(&o.inFlight, "in-flight", 128, "orders in flight at once in saturated runs")
	flag.IntVar(&o.rate, "rate", 200, "offered orders per second for the latency runs")
	flag.DurationVar(&o.offerFor, "offer-for", 10*time.Second, "how long each latency run offers orders")
	flag.IntVar(&o.growth, "growth", 10000, "orders for one customer in the growth run")
	flag.IntVar(&o.stored, "stored", 20000, "orders stored when listing latency is measured")
	flag.StringVar(&o.brokers, "brokers", "", "Kafka bootstrap servers (default: kfake in this process)")
	flag.IntVar(&o.partitions, "partitions", 3, "partitions per topic of the kfake broker")
	flag.StringVar(&o.only, "only", "baseline,inprocess,kafka,growth", "which parts to run (replicas: N replicas on Apache Kafka and FerretDB, beside 1)")
	flag.IntVar(&o.replicas, "replicas", 3, "replicas in the replicas part")
	flag.IntVar(&o.replicaOrders, "replica-orders", 200, "orders per saturated run in the replicas part")
	flag.IntVar(&o.replicaRate, "replica-rate", 2, "offered orders per second in the replicas part (FerretDB carries 2-3 here)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type report struct {
	lines    []string
	criteria []string
}

func (r *report) add(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	r.lines = append(r.lines, line)
	fmt.Println(line)
}

func (r *report) criterion(ok bool, format string, args ...any) {
	word := "FAIL"
	if ok {
		word = "PASS"
	}
	r.criteria = append(r.criteria, word+"  "+fmt.Sprintf(format, args...))
}

func run(o options) error {
	parts := map[string]bool{}
	for _, p := range strings.Split(o.only, ",") {
		parts[strings.TrimSpace(p)] = true
	}
	work, err := os.MkdirTemp("", "cupcake-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin, err := runner.Build(work)
	if err != nil {
		return err
	}
	brokers := strings.Split(o.brokers, ",")
	where := "Kafka at " + o.brokers
	if o.brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.partitions), append(slices.Clone(broker.Topics), "baseline")...),
			kfake.AllowAutoTopicCreation())
		if err != nil {
			return err
		}
		defer c.Close()
		brokers = c.ListenAddrs()
		where = fmt.Sprintf("kfake (in this process, %d partitions per topic)", o.partitions)
	}
	r := &report{}
	fmt.Printf("cupcake-factory bench: %s, data under %s, %d orders in flight when saturated\n\n", where, work, o.inFlight)

	var kafkaRecs, boltUnits float64
	if parts["baseline"] {
		if kafkaRecs, err = kafkaBaseline(brokers, "baseline", int32(o.partitions), 100_000); err != nil {
			return fmt.Errorf("Kafka baseline: %w", err)
		}
		r.add("baseline  sarama async idempotent producer + consumer group: %8.0f records/s", kafkaRecs)
		if boltUnits, err = boltBaseline(work, 256, 3*time.Second); err != nil {
			return fmt.Errorf("bbolt baseline: %w", err)
		}
		r.add("baseline  bbolt group commit (DB.Batch, 256 writers):          %8.0f durable writes/s", boltUnits)
	}

	if parts["inprocess"] {
		ops, err := pipeline(r, bin, filepath.Join(work, "inprocess"), "in-process", o, nil)
		if err != nil {
			return err
		}
		r.criterion(ops >= 1000, "in-process with the durable store: %.0f orders/s (at least 1000)", ops)
		if boltUnits > 0 {
			// Each order is about 15 units of work on the store.
			r.add("ratio     in-process store writes / bbolt ceiling: %.2f (at about 15 writes per order)", ops*15/boltUnits)
		}
	}

	if parts["kafka"] {
		env := []string{"KAFKA_BROKERS=" + strings.Join(brokers, ","), fmt.Sprintf("KAFKA_GROUP_PREFIX=bench-%d", time.Now().UnixNano())}
		ops, err := pipeline(r, bin, filepath.Join(work, "kafka"), "over Kafka", o, env)
		if err != nil {
			return err
		}
		r.criterion(ops >= 500, "over Kafka: %.0f orders/s (at least 500)", ops)
		if kafkaRecs > 0 {
			r.add("ratio     pipeline records / baseline records per second: %.2f (%d records per order)",
				ops*recordsPerOrder/kafkaRecs, recordsPerOrder)
		}
	}

	if parts["replicas"] {
		if err := replicas(r, bin, work, o); err != nil {
			return err
		}
	}

	if parts["growth"] {
		if err := growth(r, bin, filepath.Join(work, "growth"), o); err != nil {
			return err
		}
	}

	fmt.Println()
	for _, c := range r.criteria {
		fmt.Println(c)
	}
	return nil
}

// pipeline measures one way of running: saturated orders/s, then latency at
// the offered rate. It returns orders per second.
func pipeline(r *report, bin, dir, name string, o options, env []string) (float64, error) {
	s, err := start(bin, dir, env...)
	if err != nil {
		return 0, err
	}
	defer s.stop()
	if err := s.createCustomer("bench"); err != nil {
		return 0, err
	}
	// Warm up (connections, consumer groups settled) before timing.
	if _, _, _, err := s.saturate(one("bench"), 2*o.inFlight, o.inFlight); err != nil {
		return 0, fmt.Errorf("%s warm-up: %w", name, err)
	}
	cpu0, cpuErr := cpuTime(s.srv.Pid())
	took, lat, _, err := s.saturate(one("bench"), o.orders, o.inFlight)
	if err != nil {
		return 0, fmt.Errorf("%s saturated: %w", name, err)
	}
	cpu1, err := cpuTime(s.srv.Pid())
	if n := s.missed.Load(); n > 0 {
		r.add("%-9s note: %d shipped orders were found by asking for them: the stream had dropped this client as too slow", name, n)
	}
	ops := float64(o.orders) / took.Seconds()
	r.add("%-9s %d orders, %d in flight: %6.0f orders/s   e2e p50 %8s  p99 %8s", name, o.orders, o.inFlight, ops, pct(lat, 50), pct(lat, 99))
	if cpuErr == nil && err == nil {
		r.add("%-9s   the system's CPU time per order, saturated: %s", name, ((cpu1 - cpu0) / time.Duration(o.orders)).Round(time.Microsecond))
	}
	lat, ids, err := s.offer(one("bench"), o.rate, o.offerFor)
	if err != nil {
		return 0, fmt.Errorf("%s at %d orders/s: %w", name, o.rate, err)
	}
	stages, err := s.stages(ids)
	if err != nil {
		return 0, err
	}
	shipped := stages["placed → shipped"]
	r.add("%-9s offered %d orders/s for %s:       e2e p50 %8s  p99 %8s  (placed → shipped, as stored)", name, o.rate, o.offerFor, pct(shipped, 50), pct(shipped, 99))
	r.add("%-9s                                          seen p50 %8s  p99 %8s  (placed → seen shipped on the notification stream)", name, pct(lat, 50), pct(lat, 99))
	parts := []string{fmt.Sprintf("POST answered %s/%s", pct(stages["accepted"], 50), pct(stages["accepted"], 99)),
		fmt.Sprintf("created %s/%s", pct(stages["placed → created"], 50), pct(stages["placed → created"], 99))}
	for i := 1; i < len(flow); i++ {
		k := flow[i-1] + " → " + flow[i]
		parts = append(parts, fmt.Sprintf("%s %s/%s", flow[i], pct(stages[k], 50), pct(stages[k], 99)))
	}
	parts = append(parts, fmt.Sprintf("seen on the stream %s/%s", pct(stages["shipped → seen"], 50), pct(stages["shipped → seen"], 99)))
	r.add("%-9s   where the time goes at %d orders/s (p50/p99 since the step before): %s", name, o.rate, strings.Join(parts, ", "))
	if env != nil {
		r.criterion(pct(shipped, 99) <= 100*time.Millisecond, "over Kafka at %d orders/s offered: e2e p99 %s (at most 100ms)", o.rate, pct(shipped, 99))
	}
	return ops, nil
}

// growth places o.growth orders for one customer, in process, and reports
// orders/s per thousand; then fills the store to o.stored orders and times
// a page of 50 at the start, deep in the listing, and of one state.
func growth(r *report, bin, dir string, o options) error {
	s, err := start(bin, dir)
	if err != nil {
		return err
	}
	defer s.stop()
	if err := s.createCustomer("regular"); err != nil {
		return err
	}
	start := time.Now()
	_, _, finished, err := s.saturate(one("regular"), o.growth, o.inFlight)
	if err != nil {
		return fmt.Errorf("growth: %w", err)
	}
	slices.SortFunc(finished, func(a, b time.Time) int { return a.Compare(b) })
	var rates []string
	var first, last float64
	for k := 1000; k <= len(finished); k += 1000 {
		from := start
		if k > 1000 {
			from = finished[k-1000-1]
		}
		rate := 1000 / finished[k-1].Sub(from).Seconds()
		rates = append(rates, fmt.Sprintf("%.0f", rate))
		if k == 1000 {
			first = rate
		}
		last = rate
	}
	r.add("growth    one customer, orders/s per thousand: %s", strings.Join(rates, " "))
	r.criterion(last >= 0.8*first, "one customer's last thousand orders at %.2f× the speed of the first (at least 0.8×)", last/first)

	if more := o.stored - o.growth; more > 0 {
		if err := s.createCustomer("filler"); err != nil {
			return err
		}
		if _, _, _, err := s.saturate(one("filler"), more, o.inFlight); err != nil {
			return fmt.Errorf("fill the store: %w", err)
		}
	}
	deep, err := s.cursorAt("/api/v1/orders?limit=1000", o.stored/2000)
	if err != nil {
		return err
	}
	deep = strings.Replace(deep, "limit=1000", "limit=50", 1)
	for _, p := range []struct{ name, path string }{
		{"first page", "/api/v1/orders?limit=50"},
		{"deep page", deep},
		{"shipped", "/api/v1/orders?status=" + events.StatusShipped + "&limit=50"},
	} {
		lat, err := s.listLatency(p.path, 100)
		if err != nil {
			return err
		}
		r.add("list      %d orders stored, a page of 50 (%s): p50 %8s  p99 %8s", o.stored, p.name, pct(lat, 50), pct(lat, 99))
		r.criterion(pct(lat, 50) < 20*time.Millisecond, "a page of 50 out of %d (%s) in %s (under 20ms)", o.stored, p.name, pct(lat, 50))
	}
	return nil
}

// cpuTime is the CPU time a process has used so far (user and system), as
// Linux counts it in /proc: a figure of the system's own cost per order
// that the bench client, sharing the cores, does not blur.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// After the command name in parentheses: state, then utime and stime
	// as the 12th and 13th fields, in clock ticks of 1/100 s.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Round(100 * time.Microsecond)
}
