package kafka

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

// errNotConnected is returned while a connection to the brokers is still
// being made; it is retriable.
var errNotConnected = errors.New("not connected to Kafka yet")

// retriableKErrors are the broker's error codes that Kafka's own clients
// retry (RetriableException in the Java client): they pass once a leader
// is elected, a coordinator loaded, a topic's metadata propagated.
var retriableKErrors = map[sarama.KError]bool{
	sarama.ErrUnknownTopicOrPartition:         true, // right after a topic is created
	sarama.ErrLeaderNotAvailable:              true, // during a leader election
	sarama.ErrNotLeaderForPartition:           true, // NOT_LEADER_OR_FOLLOWER: leadership moved or is settling
	sarama.ErrRequestTimedOut:                 true,
	sarama.ErrBrokerNotAvailable:              true,
	sarama.ErrReplicaNotAvailable:             true,
	sarama.ErrNetworkException:                true,
	sarama.ErrOffsetsLoadInProgress:           true, // COORDINATOR_LOAD_IN_PROGRESS
	sarama.ErrConsumerCoordinatorNotAvailable: true,
	sarama.ErrNotCoordinatorForConsumer:       true,
	sarama.ErrNotEnoughReplicas:               true,
	sarama.ErrNotEnoughReplicasAfterAppend:    true,
	sarama.ErrNotController:                   true,
	sarama.ErrKafkaStorageError:               true,
	sarama.ErrFencedLeaderEpoch:               true,
	sarama.ErrUnknownLeaderEpoch:              true,
	sarama.ErrOffsetNotAvailable:              true,
	sarama.ErrPreferredLeaderNotAvailable:     true,
	sarama.ErrEligibleLeadersNotAvailable:     true,
	sarama.ErrUnstableOffsetCommit:            true,
	sarama.ErrThrottlingQuotaExceeded:         true,
	sarama.ErrRebalanceInProgress:             true,
}

// Retriable reports whether err is one that passes by itself: a broker
// error code Kafka's clients retry, a broker that cannot be reached (yet),
// or a connection that broke.
func Retriable(err error) bool {
	if err == nil {
		return false
	}
	var kerr sarama.KError
	if errors.As(err, &kerr) {
		return retriableKErrors[kerr]
	}
	var cfgErr sarama.ConfigurationError
	if errors.As(err, &cfgErr) {
		return false
	}
	var netErr net.Error
	switch {
	case errors.Is(err, errNotConnected), errors.Is(err, sarama.ErrOutOfBrokers), errors.Is(err, sarama.ErrNotConnected),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr):
		return true
	}
	return false
}

// Backoff is how long to wait between attempts to reach the brokers: from
// First, doubling up to Max.
type Backoff struct {
	First, Max time.Duration
}

// connectBackoff is used while connecting at start-up and after losing the
// brokers.
var connectBackoff = Backoff{First: 200 * time.Millisecond, Max: 5 * time.Second}

// untilConnected calls connect until it succeeds or ctx ends, waiting with
// b between attempts. A retriable error is logged as a warning; any other
// as an error, and it is tried again all the same, at the longest wait: a
// process that cannot reach its brokers stays up, not ready, and says why.
func untilConnected(ctx context.Context, log *slog.Logger, what string, b Backoff, connect func() error) error {
	wait := b.First
	for attempt := 1; ; attempt++ {
		err := connect()
		if err == nil {
			if attempt > 1 {
				log.Info("connected to Kafka", "what", what, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if Retriable(err) {
			log.Warn("Kafka not ready; retrying", "what", what, "attempt", attempt, "retry_in", wait.String(), "error", err)
		} else {
			wait = b.Max
			log.Error("Kafka refused; retrying", "what", what, "attempt", attempt, "retry_in", wait.String(), "error", err)
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, b.Max)
	}
}
