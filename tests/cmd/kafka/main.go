// Command kafka runs Apache Kafka (the version the tests use, a single
// KRaft node from Maven Central's jars, fetched once with Maven) in the
// foreground on free loopback ports, with the contract's topics, until
// interrupted. It prints the bootstrap address.
//
//	go run ./cmd/kafka -partitions 3
//	make bench BROKERS=<the address it printed>
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
)

func main() {
	partitions := flag.Int("partitions", 3, "partitions of each contract topic")
	flag.Parse()
	dir, err := os.MkdirTemp("", "apache-kafka-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	k, err := broker.RunApache(dir, log.Fatalf, log.Printf)
	if err != nil {
		log.Fatal(err)
	}
	defer k.Stop()
	k.CreateTopics(int32(*partitions), broker.Topics...)
	fmt.Printf("Apache Kafka %s on %s (ready in %s; data in %s); Ctrl-C stops it\n", broker.KafkaVersion, k.Addr, k.Started, dir)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}
