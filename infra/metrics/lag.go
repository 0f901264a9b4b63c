package metrics

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// ConsumerLag is the name of the Kafka consumer lag gauge.
const ConsumerLag = "cupcakes_kafka_consumer_lag"

// Lag is one consumer group's lag on one partition, in records.
type Lag struct {
	Group, Topic string
	Partition    int32
	Records      int64
}

// WatchLag exposes Kafka consumer lag at each scrape, as read asks the
// brokers (bounded by the scrape timeout); if that fails, the gauge is left
// out of that scrape and the rest is served.
func (m *Metrics) WatchLag(read func(context.Context) ([]Lag, error)) {
	m.reg.MustRegister(&lagCollector{read: read, desc: prometheus.NewDesc(ConsumerLag,
		"Records of a partition its consumer group has not committed yet, by group, topic and partition (Kafka mode).",
		[]string{"group", "topic", "partition"}, nil)})
}

type lagCollector struct {
	read func(context.Context) ([]Lag, error)
	desc *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := withScrapeTimeout()
	defer cancel()
	lags, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, l := range lags {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(l.Records),
			l.Group, l.Topic, strconv.Itoa(int(l.Partition)))
	}
}
