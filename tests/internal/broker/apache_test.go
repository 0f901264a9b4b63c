package broker

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestApacheKafkaAnswersOnEveryContractPartitionAndKeepsRecordsAcrossARestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM")
	}
	k := StartApache(t, 3)
	t.Logf("first start (with %d topics of 3 partitions): %s", len(Topics), k.Started)
	Produce(t, k.Addr, &sarama.ProducerMessage{Topic: Topics[0], Key: sarama.StringEncoder("o-1"), Value: sarama.StringEncoder("before")})

	began := time.Now()
	k.Restart()
	t.Logf("SIGTERM and start on the same data: %s (start alone %s)", time.Since(began), k.Started)
	Produce(t, k.Addr, &sarama.ProducerMessage{Topic: Topics[0], Key: sarama.StringEncoder("o-1"), Value: sarama.StringEncoder("after")})
	got := ReadAll(t, k.Addr, Topics[0], 2, 5*time.Second)
	if len(got) != 2 || string(got[0].Value) != "before" || string(got[1].Value) != "after" {
		t.Fatalf("records after a restart: %d, want before and after", len(got))
	}

	began = time.Now()
	k.Kill()
	k.StartAgain()
	t.Logf("kill -9 and a start on the same data: %s", time.Since(began))
	if got := ReadAll(t, k.Addr, Topics[0], 2, 5*time.Second); len(got) != 2 {
		t.Fatalf("%d records after kill -9 and a start, want 2", len(got))
	}
	began = time.Now()
	k.Stop()
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("SIGTERM took %s to stop the broker", d)
	}
}
