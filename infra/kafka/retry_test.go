package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"

	"github.com/IBM/sarama"
)

func TestRetriableTellsPassingBrokerErrorsFromLastingOnes(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"NOT_LEADER_OR_FOLLOWER while a new topic's leader settles", fmt.Errorf("read orderupdates/0: %w", sarama.ErrNotLeaderForPartition), true},
		{"LEADER_NOT_AVAILABLE during an election", sarama.ErrLeaderNotAvailable, true},
		{"UNKNOWN_TOPIC_OR_PARTITION right after creation", fmt.Errorf("partitions of x: %w", sarama.ErrUnknownTopicOrPartition), true},
		{"coordinator loading", sarama.ErrOffsetsLoadInProgress, true},
		{"coordinator not available", sarama.ErrConsumerCoordinatorNotAvailable, true},
		{"no broker reachable", fmt.Errorf("connect: %w", sarama.ErrOutOfBrokers), true},
		{"connection refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"connection closed", io.EOF, true},
		{"not connected yet", fmt.Errorf("producer: %w", errNotConnected), true},
		{"topic authorization failed", sarama.ErrTopicAuthorizationFailed, false},
		{"invalid topic", sarama.ErrInvalidTopic, false},
		{"bad client configuration", sarama.ConfigurationError("Net.DialTimeout must be > 0"), false},
		{"something else", errors.New("boom"), false},
		{"closed while connecting", context.Canceled, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Retriable(tt.err); got != tt.want {
				t.Errorf("Retriable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestAProducerStartedWithoutABrokerIsNotReadyAndItsSendsAreRetriable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p, err := StartProducer([]string{addr}, "t", ModeBinary, func(string) string { return "t" }, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Ready(); err == nil || !Retriable(err) {
		t.Errorf("Ready() = %v, want a retriable error", err)
	}
	if err := p.Send(&sarama.ProducerMessage{Topic: "t"}); err == nil || !Retriable(err) {
		t.Errorf("Send = %v, want a retriable error", err)
	}
}

func TestAProducerWithAnUnknownContentModeIsRefusedAtOnce(t *testing.T) {
	if _, err := StartProducer([]string{"127.0.0.1:1"}, "t", "xml", nil, quietLog()); err == nil {
		t.Error("content mode xml accepted")
	}
}
func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
