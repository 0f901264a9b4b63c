package kafka

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cupcake-factory/cupcake-factory/events"
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
