package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/ferret"
)

// hotCustomer takes every other order in the replica runs: a café that
// orders many boxes at once, beside sixteen ordinary shops.
func hotCustomer(i int) string {
	if i%2 == 0 {
		return "cafe"
	}
	return fmt.Sprintf("shop-%02d", i%16)
}

var customers = func() []string {
	out := []string{"cafe"}
	for i := range 16 {
		out = append(out, fmt.Sprintf("shop-%02d", i))
	}
	return out
}()

// replicas measures the path by which users outgrow one machine: Apache
// Kafka, and MongoDB's wire protocol (FerretDB behind the tests' proxy,
// which runs writes one at a time as MongoDB keeps each document atomic),
// with one replica and then with n, each run on a fresh database.
func replicas(r *report, bin, work string, o options) error {
	db, err := ferret.Run(context.Background(), ferret.Options{Dir: filepath.Join(work, "ferretdb")})
	if err != nil {
		return err
	}
	defer db.Close()
	r.add("replicas  Apache Kafka %s (%d partitions per topic), FerretDB on SQLite behind the write-serializing proxy", broker.KafkaVersion, o.partitions)
	counts := slices.Compact([]int{1, o.replicas})
	var cmds []float64
	for _, n := range counts {
		c, err := replicaRun(r, bin, filepath.Join(work, fmt.Sprintf("apache-kafka-%d", n)), db.URI, n, o)
		if err != nil {
			return fmt.Errorf("%d replicas: %w", n, err)
		}
		cmds = append(cmds, c)
	}
	r.criterion(slices.Max(cmds) <= 20, "MongoDB commands per shipped order over Kafka: %s (at most 20)", strings.Trim(fmt.Sprint(cmds), "[]"))
	return nil
}

// replicaRun runs n replicas on one new database and an Apache Kafka of
// their own (new consumer groups read their topics from the start: another
// run's records would be theirs too), and reports saturated and fixed-rate
// figures; it returns MongoDB commands per order of the saturated run.
func replicaRun(r *report, bin, kafkaDir, uri string, n int, o options) (float64, error) {
	if err := os.MkdirAll(kafkaDir, 0o755); err != nil {
		return 0, err
	}
	k, err := broker.RunApache(kafkaDir,
		func(format string, args ...any) { panic(fmt.Sprintf(format, args...)) },
		func(string, ...any) {})
	if err != nil {
		return 0, err
	}
	defer k.Stop()
	k.CreateTopics(int32(o.partitions), broker.Topics...)
	brokers := k.Addr
	run := fmt.Sprintf("r%d-%d", n, time.Now().UnixNano())
	env := map[string]string{
		"KAFKA_BROKERS": brokers, "KAFKA_GROUP_PREFIX": run, "MONGODB_URI": uri, "MONGODB_DATABASE": run,
		"SEED_DEMO": "false", "KAFKA_INSTANCE_ID": run + "-1",
		// FerretDB runs a few hundred commands a second: with the default
		// 256 records in hand per partition, thousands of handlers queue
		// for the driver's 100 connections, time out after 10 s and are
		// retried into dead letters. A few per partition keep it flowing.
		"KAFKA_MAX_IN_FLIGHT": "4",
	}
	var vars []string
	for k, v := range env {
		vars = append(vars, k+"="+v)
	}
	s, err := start(bin, "", vars...)
	if err != nil {
		return 0, err
	}
	defer s.stop()
	for i := 2; i <= n; i++ {
		env["KAFKA_INSTANCE_ID"] = fmt.Sprintf("%s-%d", run, i)
		if err := s.startReplica(bin, env); err != nil {
			return 0, err
		}
	}
	for _, c := range customers {
		if err := s.createCustomer(c); err != nil {
			return 0, err
		}
	}
	name := fmt.Sprintf("%d replica", n)
	if n > 1 {
		name += "s"
	}
	if _, _, _, err := s.saturate(hotCustomer, o.inFlight/2, o.inFlight/2); err != nil {
		return 0, fmt.Errorf("warm-up: %w", err)
	}
	before, err := s.counters()
	if err != nil {
		return 0, err
	}
	reads := s.reads.Load()
	took, lat, _, err := s.saturate(hotCustomer, o.replicaOrders, o.inFlight)
	if err != nil {
		return 0, fmt.Errorf("saturated: %w", err)
	}
	after, err := s.counters()
	if err != nil {
		return 0, err
	}
	// Less the finds of the bench's own reads (an order not seen shipped
	// on the stream within 5 s is asked for), which no shop would make.
	reads = s.reads.Load() - reads
	perOrder := (after.commands - before.commands - float64(reads)) / float64(o.replicaOrders)
	r.add("%-11s %d orders (every other one the same customer's), %d in flight: %5.0f orders/s  e2e p50 %8s  p99 %8s",
		name, o.replicaOrders, o.inFlight, float64(o.replicaOrders)/took.Seconds(), pct(lat, 50), pct(lat, 99))
	r.add("%-11s   MongoDB commands per order %.1f (%s; less the bench's own %d reads)", name, perOrder, after.minus(before), reads)

	// Polling: commands while nothing is ordered.
	idle0, _ := s.counters()
	time.Sleep(5 * time.Second)
	idle1, _ := s.counters()
	r.add("%-11s   idle, with %d orders stored: %.1f MongoDB commands/s in all", name, o.replicaOrders+o.inFlight/2, (idle1.commands-idle0.commands)/5)

	lat, _, err = s.offer(hotCustomer, o.replicaRate, o.offerFor)
	if err != nil {
		return 0, fmt.Errorf("at %d orders/s: %w", o.replicaRate, err)
	}
	r.add("%-11s offered %d orders/s for %s: e2e p50 %8s  p99 %8s", name, o.replicaRate, o.offerFor, pct(lat, 50), pct(lat, 99))
	end, err := s.counters()
	if err != nil {
		return 0, err
	}
	open, err := s.notEnded()
	if err != nil {
		return 0, err
	}
	r.add("%-11s   dead letters %.0f, orders not ended %d", name, end.dead, open)
	r.criterion(end.dead == 0 && open == 0, "%s: no dead letters (%.0f), every order ended (%d not)", name, end.dead, open)
	return perOrder, nil
}

type counters struct {
	commands, dead float64
	byCommand      map[string]float64
}

func (c counters) minus(b counters) string {
	var parts []string
	for k, v := range c.byCommand {
		if d := v - b.byCommand[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, d))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

var (
	commandLine = regexp.MustCompile(`(?m)^cupcakes_mongodb_commands_total\{command="([^"]+)"\} (\S+)$`)
	deadLine    = regexp.MustCompile(`(?m)^cupcakes_deadletters_total\{[^}]*\} (\S+)$`)
)

// counters sums every replica's MongoDB commands and dead letters.
func (s *system) counters() (counters, error) {
	c := counters{byCommand: map[string]float64{}}
	for _, rep := range s.all() {
		b, st, err := rep.do(http.MethodGet, "/metrics", "")
		if err != nil || st != http.StatusOK {
			return c, fmt.Errorf("GET /metrics: %d %v", st, err)
		}
		for _, m := range commandLine.FindAllStringSubmatch(string(b), -1) {
			v, _ := strconv.ParseFloat(m[2], 64)
			c.byCommand[m[1]] += v
			c.commands += v
		}
		for _, m := range deadLine.FindAllStringSubmatch(string(b), -1) {
			v, _ := strconv.ParseFloat(m[1], 64)
			c.dead += v
		}
	}
	return c, nil
}

// notEnded counts the orders in a state before the end of the flow.
func (s *system) notEnded() (int, error) {
	total := 0
	for _, st := range []string{events.StatusCreated, events.StatusApproved, events.StatusMixed,
		events.StatusBaked, events.StatusDecorated, events.StatusPackaged} {
		b, code, err := s.do(http.MethodGet, "/api/v1/orders?limit=1000&status="+st, "")
		if err != nil || code != http.StatusOK {
			return 0, fmt.Errorf("GET orders %s: %d %v", st, code, err)
		}
		var p struct {
			Count int `json:"count"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			return 0, err
		}
		total += p.Count
	}
	return total, nil
}
