package events_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/cupcake-factory/cupcake-factory/events"
)

type asyncDoc struct {
	AsyncAPI string `json:"asyncapi"`
	Channels map[string]struct {
		Address  string                       `json:"address"`
		Messages map[string]map[string]string `json:"messages"`
	} `json:"channels"`
	Components struct {
		Messages map[string]struct {
			Name string `json:"name"`
		} `json:"messages"`
	} `json:"components"`
}

// typesOn returns the event types the document puts on topic.
func (d asyncDoc) typesOn(topic string) []string {
	var out []string
	for _, m := range d.Channels[topic].Messages {
		key := strings.TrimPrefix(m["$ref"], "#/components/messages/")
		out = append(out, d.Components.Messages[key].Name)
	}
	slices.Sort(out)
	return out
}

func TestTheAsyncAPIDocumentNamesEveryTopicAndTypeOfThePipeline(t *testing.T) {
	var d asyncDoc
	if err := json.Unmarshal(events.AsyncAPI, &d); err != nil {
		t.Fatalf("asyncapi.json: %v", err)
	}
	if !strings.HasPrefix(d.AsyncAPI, "3.") {
		t.Fatalf("asyncapi %q, want 3.x", d.AsyncAPI)
	}
	want := map[string][]string{
		events.TopicOrderUpdates: {events.TypeCancelled, events.TypeFailed, events.TypeShipped, events.TypeStatusChanged},
		events.TopicDeadLetters:  {"dead-letter"},
	}
	for _, s := range events.Pipeline {
		want[s.Topic] = s.Types()
	}
	for topic, types := range want {
		slices.Sort(types)
		if d.Channels[topic].Address != topic {
			t.Errorf("no channel with address %s", topic)
		}
		if got := d.typesOn(topic); !slices.Equal(got, types) {
			t.Errorf("channel %s carries %v, want %v", topic, got, types)
		}
	}
	for name := range d.Channels {
		if _, ok := want[name]; !ok {
			t.Errorf("channel %s is no topic of the pipeline", name)
		}
	}
}
