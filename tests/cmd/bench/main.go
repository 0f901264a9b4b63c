// Command bench measures cupcake-factory's throughput and per-stage latency
// for full orders (created → shipped), over Kafka and in-process, and a
// baseline measured in the same run through the same broker: plain sarama
// producing and consuming as many records as the pipeline moved. It prints
// the figures and the ratios. The broker is kfake, in this process, on
// loopback: the numbers compare the two paths on this machine, they are not
// Apache Kafka's.
//
//	go run ./cmd/bench -orders 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	function "github.com/cupcake-factory/cupcake-factory"
	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/config"
)

// recordsPerOrder is what one full order puts on Kafka: order.created,
// credit-validated, mixed, baked, decorated, packaged, shipped, and a
// status-changed notification for each of the seven states.
const recordsPerOrder = 7 + 7

var stages = []string{
	events.StatusCreated, events.StatusApproved, events.StatusMixed, events.StatusBaked,
	events.StatusDecorated, events.StatusPackaged, events.StatusShipped,
}

func main() {
	orders := flag.Int("orders", 1000, "full orders per run")
	partitions := flag.Int("partitions", 3, "partitions per topic")
	flag.Parse()
	if err := run(*orders, int32(*partitions)); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type result struct {
	name     string
	took     time.Duration
	records  int // records (baseline) or handled events (pipelines)
	orders   int
	e2e      []time.Duration
	perStage map[string][]time.Duration
}

func run(orders int, partitions int32) error {
	topics := []string{events.TopicOrderRequests, events.TopicOrderValidations, events.TopicReadyToBake,
		events.TopicReadyToDecorate, events.TopicReadyToPackage, events.TopicReadyToShip,
		events.TopicOrderUpdates, events.TopicDeadLetters, "baseline"}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		return err
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	fmt.Printf("cupcake-factory bench: %d orders, %d partitions per topic, kfake on %s, GOMAXPROCS-limited machine\n\n",
		orders, partitions, strings.Join(brokers, ","))

	base, err := baseline(brokers, orders*recordsPerOrder)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	overKafka, err := pipeline("pipeline over Kafka", orders, brokers)
	if err != nil {
		return fmt.Errorf("kafka pipeline: %w", err)
	}
	inProcess, err := pipeline("pipeline in-process", orders, nil)
	if err != nil {
		return fmt.Errorf("in-process pipeline: %w", err)
	}

	fmt.Printf("%-28s %10s %12s %12s %12s %12s\n", "", "took", "records/s", "orders/s", "e2e p50", "e2e p99")
	for _, r := range []result{base, overKafka, inProcess} {
		ops := "-"
		if r.orders > 0 {
			ops = fmt.Sprintf("%.0f", float64(r.orders)/r.took.Seconds())
		}
		fmt.Printf("%-28s %10s %12.0f %12s %12s %12s\n", r.name, r.took.Round(time.Millisecond),
			float64(r.records)/r.took.Seconds(), ops, pct(r.e2e, 50), pct(r.e2e, 99))
	}
	fmt.Println()
	for _, r := range []result{overKafka, inProcess} {
		fmt.Printf("%s, per stage (p50 / p99; store timestamps have millisecond resolution):\n", r.name)
		for i := 1; i < len(stages); i++ {
			k := stages[i-1] + " → " + stages[i]
			fmt.Printf("  %-26s %10s / %s\n", k, pct(r.perStage[k], 50), pct(r.perStage[k], 99))
		}
	}
	recordRate := func(r result) float64 { return float64(orders*recordsPerOrder) / r.took.Seconds() }
	fmt.Println()
	fmt.Printf("ratio, pipeline over Kafka / plain sarama baseline (records moved per second): %.2f\n", recordRate(overKafka)/recordRate(base))
	fmt.Printf("ratio, pipeline in-process / pipeline over Kafka (orders per second):          %.2f\n", overKafka.took.Seconds()/inProcess.took.Seconds())
	return nil
}

func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Round(10 * time.Microsecond).String()
}

// baseline produces n records one at a time with a synchronous producer
// (as the pipeline does) while a consumer group reads them, and times until
// the last one is read.
func baseline(brokers []string, n int) (result, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	prod, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return result{}, err
	}
	defer prod.Close()
	group, err := sarama.NewConsumerGroup(brokers, "baseline", cfg)
	if err != nil {
		return result{}, err
	}
	defer group.Close()
	value := make([]byte, 180) // about the size of an order event
	h := &counter{want: n, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			_ = group.Consume(ctx, []string{"baseline"}, h)
		}
	}()
	start := time.Now()
	for i := range n {
		msg := &sarama.ProducerMessage{Topic: "baseline", Key: sarama.StringEncoder(fmt.Sprintf("o-%d", i/recordsPerOrder)), Value: sarama.ByteEncoder(value)}
		if _, _, err := prod.SendMessage(msg); err != nil {
			return result{}, err
		}
	}
	select {
	case <-h.done:
	case <-time.After(2 * time.Minute):
		return result{}, fmt.Errorf("baseline consumer read %d of %d", h.seen(), n)
	}
	return result{name: "baseline: plain sarama", took: time.Since(start), records: n}, nil
}

type counter struct {
	mu   sync.Mutex
	n    int
	want int
	done chan struct{}
}

func (c *counter) seen() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

func (c *counter) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *counter) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (c *counter) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		s.MarkMessage(m, "")
		c.mu.Lock()
		c.n++
		if c.n == c.want {
			close(c.done)
		}
		c.mu.Unlock()
	}
	return nil
}

// pipeline runs the whole system in this process (over Kafka if brokers
// are given), places orders for full flows, and waits until all shipped.
func pipeline(name string, orders int, brokers []string) (result, error) {
	dir, err := os.MkdirTemp("", "cupcake-bench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	os.Setenv("DATA_DIR", dir)
	os.Setenv("KAFKA_BROKERS", strings.Join(brokers, ","))
	os.Setenv("KAFKA_GROUP_PREFIX", fmt.Sprintf("bench-%d", time.Now().UnixNano()))
	cfg, err := config.Load()
	if err != nil {
		return result{}, err
	}
	ctx := context.Background()
	app, err := function.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return result{}, err
	}
	defer app.Close(ctx)
	if _, err := app.CreateCustomer(ctx, domain.NewCustomer{ID: "bench", Name: "Bench", CreditLimit: int64(orders) * 200}); err != nil {
		return result{}, err
	}
	if len(brokers) > 0 {
		time.Sleep(2 * time.Second) // let the consumer groups settle before timing
	}
	start := time.Now()
	for i := range orders {
		id := fmt.Sprintf("o-%06d", i)
		e, err := events.New(events.TypeOrderCreated, "bench", id, events.OrderCreated{
			OrderID: id, CustomerID: "bench", Items: []events.Item{{Flavour: "vanilla", Size: "S", Quantity: 1}},
		})
		if err != nil {
			return result{}, err
		}
		if _, err := app.Ingest(ctx, e); err != nil {
			return result{}, err
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		shipped, err := allOrders(ctx, app.Store, events.StatusShipped)
		if err != nil {
			return result{}, err
		}
		if len(shipped) == orders {
			break
		}
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("%d of %d orders shipped in time", len(shipped), orders)
		}
	}
	took := time.Since(start)
	all, err := allOrders(ctx, app.Store, events.StatusShipped)
	if err != nil {
		return result{}, err
	}
	r := result{name: name, took: took, records: orders * recordsPerOrder, orders: orders, perStage: map[string][]time.Duration{}}
	for _, o := range all {
		at := map[string]time.Time{}
		for _, h := range o.History {
			at[h.Status] = h.At
		}
		r.e2e = append(r.e2e, at[events.StatusShipped].Sub(at[events.StatusCreated]))
		for i := 1; i < len(stages); i++ {
			k := stages[i-1] + " → " + stages[i]
			r.perStage[k] = append(r.perStage[k], at[stages[i]].Sub(at[stages[i-1]]))
		}
	}
	return r, nil
}

func allOrders(ctx context.Context, s domain.Store, status string) ([]domain.Order, error) {
	var all []domain.Order
	for q := (domain.OrderQuery{Status: status, Limit: 1000}); ; {
		page, err := s.Orders(ctx, q)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Orders...)
		if page.Next == "" {
			return all, nil
		}
		q.After = page.Next
	}
}
