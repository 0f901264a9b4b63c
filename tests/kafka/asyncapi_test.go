package kafka

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/tests/e2e"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/asyncapi"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
)

// The contract's topics, as the AsyncAPI document names them.
var allTopics = []string{
	events.TopicOrderRequests, events.TopicOrderValidations, events.TopicReadyToBake, events.TopicReadyToDecorate,
	events.TopicReadyToPackage, events.TopicReadyToShip, events.TopicOrderUpdates, events.TopicDeadLetters,
}

func TestEveryEventProducedInAFullFlowFitsTheAsyncAPIDocument(t *testing.T) {
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			addr := broker.Start(t, 2)
			p := startApp(t, addr, map[string]string{"KAFKA_CONTENT_MODE": mode})
			for _, post := range []struct {
				id, data string
			}{
				{"o-a1", e2e.OrderData("o-a1", "alice", "vanilla", "M", 6)},       // ships
				{"o-a2", e2e.OrderData("o-a2", "alice", "lemon", "XL", 1000)},     // insufficient credit
				{"o-a3", e2e.OrderData("o-a3", "nobody", "carrot", "S", 1)},       // unknown customer
				{"o-a4", e2e.OrderData("o-a4", "alice", "red-velvet", "L", 1000)}, // insufficient credit
			} {
				if r := e2e.PostBinary(t, p, "ev-"+post.id, events.TypeOrderCreated, post.id, post.data); r.Status != http.StatusAccepted {
					t.Fatalf("POST / = %d %s", r.Status, r.Body)
				}
			}
			if r := p.PostJSON(t, "/api/v1/order", `{"orderId":"o-a5","customerId":"alice","items":[{"flavour":"carrot","size":"S","quantity":2}]}`); r.Status != http.StatusAccepted {
				t.Fatalf("POST order = %d %s", r.Status, r.Body)
			}
			waitFinal(t, p, []string{"o-a1", "o-a2", "o-a3", "o-a4", "o-a5"}, 30*time.Second)

			seen := map[string]int{}
			for _, topic := range allTopics {
				for _, rec := range broker.ReadAll(t, addr, topic, 0, time.Second) {
					e, err := binding.ToEvent(context.Background(), kafka_sarama.NewMessageFromConsumerMessage(rec))
					if err != nil {
						t.Errorf("%s offset %d is not a CloudEvent: %v", topic, rec.Offset, err)
						continue
					}
					if err := asyncapi.Validate(topic, *e); err != nil {
						t.Errorf("%s offset %d: %v", topic, rec.Offset, err)
					}
					seen[e.Type()]++
				}
			}
			for _, typ := range []string{events.TypeOrderCreated, events.TypeCreditValidated, events.TypeMixed, events.TypeBaked,
				events.TypeDecorated, events.TypePackaged, events.TypeShipped, events.TypeCancelled, events.TypeStatusChanged} {
				if seen[typ] == 0 {
					t.Errorf("no %s event was produced; seen %v", typ, seen)
				}
			}
		})
	}
}
