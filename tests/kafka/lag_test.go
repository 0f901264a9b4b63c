package kafka

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cupcake-factory/cupcake-factory/events"
	ckafka "github.com/cupcake-factory/cupcake-factory/infra/kafka"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
)

// lagLine matches one consumer lag sample of /metrics.
var lagLine = regexp.MustCompile(`(?m)^cupcakes_kafka_consumer_lag\{group="([^"]+)",partition="(\d+)",topic="([^"]+)"\} (\d+)$`)

// TestMetricsTellEachGroupsLagPerPartition: /metrics has the lag of every
// consumer group of the process on every partition of its topic, read from
// the broker, and it is 0 once the orders waiting at start-up are handled
// and committed.
func TestMetricsTellEachGroupsLagPerPartition(t *testing.T) {
	addr := broker.Start(t, 2)
	// Orders produced before the process starts: its order-created group
	// finds them waiting.
	var msgs []*sarama.ProducerMessage
	for i := range 6 {
		msgs = append(msgs, orderRecord(fmt.Sprintf("o-lag%d", i), "alice", 1))
	}
	broker.Produce(t, addr, msgs...)
	p := startApp(t, addr, nil)

	lags := func() map[string]int64 { // "group topic/partition" → records
		out := map[string]int64{}
		for _, m := range lagLine.FindAllStringSubmatch(string(p.Get(t, "/metrics").Body), -1) {
			n, _ := strconv.ParseInt(m[4], 10, 64)
			out[m[1]+" "+m[3]+"/"+m[2]] = n
		}
		return out
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got := lags()
		total := int64(0)
		for _, n := range got {
			total += n
		}
		if len(got) == 2*len(events.Pipeline) && total == 0 {
			for _, s := range events.Pipeline {
				for part := range 2 {
					k := fmt.Sprintf("cupcake-factory-%s %s/%d", s.Function, s.Topic, part)
					if _, ok := got[k]; !ok {
						t.Errorf("no lag for %s in %v", k, got)
					}
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag never settled at 0 for every group and partition: %v", got)
		}
	}
}

// TestTheLagReaderCountsWhatAGroupHasNotCommitted: read from the broker, a
// group that has committed nothing is behind by every record of its topic,
// partition by partition, and by nothing once it commits past them.
func TestTheLagReaderCountsWhatAGroupHasNotCommitted(t *testing.T) {
	addr := broker.Start(t, 2)
	const topic, n = "orderrequests", 5
	tr, err := ckafka.NewTransport(ckafka.Options{Brokers: []string{addr}, GroupPrefix: "lagreader", ContentMode: ckafka.ModeBinary,
		Bindings: []ckafka.Binding{{Function: events.FuncOrderCreated, Types: []string{events.TypeOrderCreated}, Topic: topic}}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	var msgs []*sarama.ProducerMessage
	for i := range n {
		msgs = append(msgs, orderRecord(fmt.Sprintf("o-behind%d", i), "alice", 1))
	}
	broker.Produce(t, addr, msgs...)

	behind := func() (map[int32]int64, int64) {
		lags, err := tr.Lag(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		per, total := map[int32]int64{}, int64(0)
		for _, l := range lags {
			if l.Group != "lagreader-"+events.FuncOrderCreated || l.Topic != topic {
				t.Errorf("lag of %s on %s: not this process's group and topic", l.Group, l.Topic)
			}
			per[l.Partition] = l.Records
			total += l.Records
		}
		return per, total
	}
	per, total := behind()
	if len(per) != 2 || total != n {
		t.Fatalf("before any commit: %v, %d in all; want both partitions, %d in all", per, total, n)
	}

	// Commit each partition's newest offset, as a consumer that handled
	// everything does.
	client, err := sarama.NewClient([]string{addr}, ckafka.SaramaConfig("lagreader-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	group := "lagreader-" + events.FuncOrderCreated
	coordinator, err := client.Coordinator(group)
	if err != nil {
		t.Fatal(err)
	}
	commit := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: group, ConsumerGroupGeneration: -1}
	for p, records := range per {
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if newest != records {
			t.Errorf("partition %d holds %d records; the reader said %d behind", p, newest, records)
		}
		commit.AddBlock(topic, p, newest, 0, "")
	}
	resp, err := coordinator.CommitOffset(commit)
	if err != nil {
		t.Fatal(err)
	}
	for p, kerr := range resp.Errors[topic] {
		if kerr != sarama.ErrNoError {
			t.Fatalf("commit %s/%d: %v", topic, p, kerr)
		}
	}
	if per, total := behind(); total != 0 {
		t.Errorf("after committing everything: %v behind", per)
	}
}
