package broker

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// KafkaVersion is the Apache Kafka release the tests run, from Maven Central.
const KafkaVersion = "4.3.1"

// pom is the throwaway Maven project whose runtime dependencies are a
// single-node Kafka server (broker and KRaft controller), its tools
// (StorageTool formats the data directory) and a log4j binding.
const pom = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cupcake-factory</groupId>
  <artifactId>kafka-server-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>` + KafkaVersion + `</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>` + KafkaVersion + `</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.25.4</version></dependency>
  </dependencies>
</project>
`

var (
	jarsOnce sync.Once
	jarsDir  string
	jarsErr  error
)

// KafkaJars returns the directory holding Apache Kafka's jars, fetching them
// once with the installed Maven into the user's cache directory
// ($XDG_CACHE_HOME or ~/.cache, under cupcake-factory/kafka-<version>) and
// reusing them afterwards. KAFKA_JARS names a ready directory instead.
// Several test processes may ask at once: a file lock lets one fetch.
func KafkaJars() (string, error) {
	jarsOnce.Do(func() { jarsDir, jarsErr = fetchJars() })
	return jarsDir, jarsErr
}

func fetchJars() (string, error) {
	if d := os.Getenv("KAFKA_JARS"); d != "" {
		return d, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the Kafka jars (set XDG_CACHE_HOME or KAFKA_JARS): %w", err)
	}
	dir := filepath.Join(cache, "cupcake-factory", "kafka-"+KafkaVersion)
	libs, done := filepath.Join(dir, "libs"), filepath.Join(dir, "complete")
	if _, err := os.Stat(done); err == nil {
		return libs, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("make %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if _, err := os.Stat(done); err == nil {
		return libs, nil // another process fetched them while this one waited
	}
	if err := os.WriteFile(filepath.Join(dir, "pom.xml"), []byte(pom), 0o644); err != nil {
		return "", fmt.Errorf("write pom: %w", err)
	}
	tmp := libs + ".partial"
	_ = os.RemoveAll(tmp)
	cmd := exec.Command("mvn", "-q", "-B", "-f", filepath.Join(dir, "pom.xml"), "dependency:copy-dependencies",
		"-DoutputDirectory="+tmp, "-DincludeScope=runtime")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("fetch Apache Kafka %s jars with Maven (mvn and a JDK 17+ are needed): %w\n%s", KafkaVersion, err, out)
	}
	_ = os.RemoveAll(libs)
	if err := os.Rename(tmp, libs); err != nil {
		return "", fmt.Errorf("move the Kafka jars into place: %w", err)
	}
	if err := os.WriteFile(done, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("mark the Kafka jars complete: %w", err)
	}
	return libs, nil
}

// Kafka is one Apache Kafka node in KRaft mode (broker and controller in
// one JVM) on loopback ports, with its own data directory.
type Kafka struct {
	// Addr is the bootstrap address (host:port).
	Addr string

	fail   func(format string, args ...any)
	logf   func(format string, args ...any)
	dir    string
	props  string
	libs   string
	topics map[string]int32 // created topics and their partitions

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	out     *bytes.Buffer
	Started time.Duration // how long the last start took, until every topic answered
}

// StartApache runs Apache Kafka for the test with every contract topic in
// partitions partitions, returns once each partition of each topic answers,
// and stops the broker when the test ends.
func StartApache(tb testing.TB, partitions int32) *Kafka {
	tb.Helper()
	k, err := RunApache(tb.TempDir(), tb.Fatalf, tb.Logf)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(k.Stop)
	k.CreateTopics(partitions, Topics...)
	tb.Logf("Apache Kafka %s on %s ready in %s", KafkaVersion, k.Addr, k.Started.Round(time.Millisecond))
	return k
}

// RunApache starts Apache Kafka with its data under dir, without topics,
// and returns once it answers. fail is called when a later step (topics,
// a restart) fails, logf for what is worth telling. The caller stops it.
func RunApache(dir string, fail, logf func(format string, args ...any)) (*Kafka, error) {
	libs, err := KafkaJars()
	if err != nil {
		return nil, err
	}
	k := &Kafka{fail: fail, logf: logf, libs: libs, dir: dir, topics: map[string]int32{}}
	began := time.Now()
	var lastErr error
	for range 3 { // a free port may be taken between choosing it and the JVM binding it
		if lastErr = k.configure(); lastErr == nil {
			if lastErr = k.start(); lastErr == nil {
				break
			}
		}
		logf("Apache Kafka did not start, trying other ports: %v", lastErr)
	}
	if lastErr != nil {
		return nil, fmt.Errorf("start Apache Kafka: %w", lastErr)
	}
	k.Started = time.Since(began)
	return k, nil
}

// configure chooses ports, writes server.properties and a log4j
// configuration, and formats the data directory.
func (k *Kafka) configure() error {
	port, cport, err := freePorts()
	if err != nil {
		return err
	}
	k.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	data := filepath.Join(k.dir, "data")
	_ = os.RemoveAll(data)
	props := strings.Join([]string{
		"process.roles=broker,controller",
		"node.id=1",
		fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d", cport),
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", port, cport),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d", port),
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"controller.listener.names=CONTROLLER",
		"inter.broker.listener.name=PLAINTEXT",
		"log.dirs=" + data,
		"num.partitions=1",
		"default.replication.factor=1",
		"min.insync.replicas=1",
		"offsets.topic.replication.factor=1",
		"offsets.topic.num.partitions=3",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
		// After a kill -9 the node restarted on the same data must wait out
		// its previous incarnation's session before it may register again
		// (9 s by default); a short one keeps broker-crash tests quick.
		"broker.session.timeout.ms=2000",
		"broker.heartbeat.interval.ms=500",
		// Topics exist because someone created them, as in production
		// (docker-compose's kafka-init, Knative's job): nothing appears by
		// being asked for.
		"auto.create.topics.enable=false",
		"log.flush.interval.messages=1000000",
		"",
	}, "\n")
	k.props = filepath.Join(k.dir, "server.properties")
	if err := os.WriteFile(k.props, []byte(props), 0o644); err != nil {
		return err
	}
	log4j := strings.Join([]string{
		"status = warn",
		"appender.file.type = File",
		"appender.file.name = FILE",
		"appender.file.fileName = " + filepath.Join(k.dir, "server.log"),
		"appender.file.layout.type = PatternLayout",
		"appender.file.layout.pattern = [%d] %p %m (%c)%n",
		"rootLogger.level = INFO",
		"rootLogger.appenderRef.file.ref = FILE",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(k.dir, "log4j2.properties"), []byte(log4j), 0o644); err != nil {
		return err
	}
	id, err := clusterID()
	if err != nil {
		return err
	}
	cmd := k.java("kafka.tools.StorageTool", "format", "-t", id, "-c", k.props)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("format %s: %w\n%s", data, err, out)
	}
	return nil
}

func (k *Kafka) java(main string, args ...string) *exec.Cmd {
	full := []string{"-Xmx512m", "-Xms128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(k.dir, "log4j2.properties"),
		"-cp", filepath.Join(k.libs, "*"), main}
	cmd := exec.Command("java", append(full, args...)...)
	// The JVM goes when the test process goes, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// start runs the JVM and waits until its listener answers metadata requests.
func (k *Kafka) start() error {
	k.mu.Lock()
	cmd := k.java("kafka.Kafka", k.props)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &k.mu, w: out}, &lockedWriter{mu: &k.mu, w: out}
	if err := cmd.Start(); err != nil {
		k.mu.Unlock()
		return fmt.Errorf("run java (a JDK 17+ is needed): %w", err)
	}
	done := make(chan struct{})
	k.cmd, k.done, k.out = cmd, done, out
	k.mu.Unlock()
	go func() { _ = cmd.Wait(); close(done) }()

	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("Apache Kafka exited at start: %s\n%s", cmd.ProcessState, k.output())
		default:
		}
		if err := k.answers(); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			k.Kill()
			return fmt.Errorf("Apache Kafka not answering after 90s (%v)\n%s", err, k.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// answers reports whether the broker answers a metadata request and has a
// group coordinator (which creates __consumer_offsets on first use).
func (k *Kafka) answers() error {
	cfg := Config()
	cfg.Net.DialTimeout = time.Second
	cfg.Metadata.Retry.Max = 0
	c, err := sarama.NewClient([]string{k.Addr}, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if len(c.Brokers()) == 0 {
		return errors.New("no brokers in metadata")
	}
	_, err = c.Coordinator("cupcake-factory-harness")
	return err
}

// CreateTopics creates topics with partitions partitions (one replica each)
// unless they exist, and returns once each partition has a leader that
// answers ListOffsets: right after creation a broker answers
// NOT_LEADER_OR_FOLLOWER for a moment.
func (k *Kafka) CreateTopics(partitions int32, names ...string) {
	began := time.Now()
	if err := createTopics(k.Addr, partitions, names...); err != nil {
		k.fail("%v\n%s", err, k.output())
		return
	}
	k.Started += time.Since(began)
	k.mu.Lock()
	for _, n := range names {
		k.topics[n] = partitions
	}
	k.mu.Unlock()
}

// createTopics creates topics on the broker at addr (existing ones are
// left alone) and waits until every partition of each answers.
func createTopics(addr string, partitions int32, names ...string) error {
	admin, err := sarama.NewClusterAdmin([]string{addr}, Config())
	if err != nil {
		return fmt.Errorf("connect admin to %s: %w", addr, err)
	}
	defer admin.Close()
	for _, n := range names {
		err := admin.CreateTopic(n, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", n, err)
		}
	}
	want := map[string]int32{}
	for _, n := range names {
		want[n] = partitions
	}
	return WaitPartitions(addr, want, 60*time.Second)
}

// WaitPartitions waits until each topic has its partitions, each with a
// leader that answers a ListOffsets request.
func WaitPartitions(addr string, topics map[string]int32, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for {
		if last = partitionsAnswer(addr, topics); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics not ready on %s after %s: %w", addr, within, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func partitionsAnswer(addr string, topics map[string]int32) error {
	cfg := Config()
	cfg.Metadata.Retry.Max = 0
	c, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	for topic, n := range topics {
		if err := c.RefreshMetadata(topic); err != nil {
			return fmt.Errorf("metadata of %s: %w", topic, err)
		}
		parts, err := c.Partitions(topic)
		if err != nil {
			return fmt.Errorf("partitions of %s: %w", topic, err)
		}
		if int32(len(parts)) < n {
			return fmt.Errorf("%s has %d partitions, want %d", topic, len(parts), n)
		}
		for _, p := range parts {
			if _, err := c.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
				return fmt.Errorf("ListOffsets %s/%d: %w", topic, p, err)
			}
		}
	}
	return nil
}

// Stop ends the broker with SIGTERM (a controlled shutdown), and kills it
// if it has not exited after 20 s.
func (k *Kafka) Stop() {
	k.mu.Lock()
	cmd, done := k.cmd, k.done
	k.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		k.logf("Apache Kafka did not stop within 20s of SIGTERM; killing it")
		_ = cmd.Process.Kill()
		<-done
	}
	k.mu.Lock()
	k.cmd = nil
	k.mu.Unlock()
}

// Kill ends the broker at once (SIGKILL).
func (k *Kafka) Kill() {
	k.mu.Lock()
	cmd, done := k.cmd, k.done
	k.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
	k.mu.Lock()
	k.cmd = nil
	k.mu.Unlock()
}

// Restart stops the broker (SIGTERM) and starts it again on the same data
// directory and ports, and returns once every topic created through it
// answers again.
func (k *Kafka) Restart() {
	k.Stop()
	k.StartAgain()
}

// StartAgain starts a stopped or killed broker on the same data and ports.
func (k *Kafka) StartAgain() {
	began := time.Now()
	var err error
	for range 50 { // the old listener's port may take a moment to be free again
		if err = k.start(); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		k.fail("restart Apache Kafka: %v", err)
		return
	}
	k.mu.Lock()
	topics := maps(k.topics)
	k.mu.Unlock()
	if err := WaitPartitions(k.Addr, topics, 60*time.Second); err != nil {
		k.fail("%v\n%s", err, k.output())
		return
	}
	k.Started = time.Since(began)
}

// Log returns the end of the broker's log (server.log and the console).
func (k *Kafka) Log() string { return k.output() }

func (k *Kafka) output() string {
	k.mu.Lock()
	var console string
	if k.out != nil {
		console = k.out.String()
	}
	k.mu.Unlock()
	b, _ := os.ReadFile(filepath.Join(k.dir, "server.log"))
	s := string(b)
	if len(s) > 6000 {
		s = "…" + s[len(s)-6000:]
	}
	return "server.log: " + s + "\nconsole: " + console
}

func maps(m map[string]int32) map[string]int32 {
	out := make(map[string]int32, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// freePorts returns two loopback ports free right now.
func freePorts() (int, int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports[0], ports[1], nil
}

// clusterID is 16 random bytes, base64url without padding, as Kafka's
// Uuid; one starting with '-' would read as a flag.
func clusterID() (string, error) {
	for {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		if id := base64.RawURLEncoding.EncodeToString(b); id[0] != '-' {
			return id, nil
		}
	}
}
