// Package asyncapi validates CloudEvents against the AsyncAPI 3 document of
// cupcake-factory (events.AsyncAPI) with a JSON Schema validator: an event
// must be a message of the channel (topic) it travelled on, its attributes
// must fit the message's headers and its data the message's payload. The
// suites call Validate on every record they read, whatever broker they run.
package asyncapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cupcake-factory/cupcake-factory/events"
)

// message is one message of a channel, compiled.
type message struct {
	name             string
	headers, payload *jsonschema.Schema
}

type document struct {
	channels map[string][]message // topic → its messages
}

var (
	loadOnce sync.Once
	loaded   *document
	loadErr  error
)

const docURL = "https://cupcake-factory.invalid/asyncapi.json"

func load() (*document, error) {
	loadOnce.Do(func() { loaded, loadErr = compile(events.AsyncAPI) })
	return loaded, loadErr
}

func compile(raw []byte) (*document, error) {
	var doc struct {
		Channels map[string]struct {
			Address  string                       `json:"address"`
			Messages map[string]map[string]string `json:"messages"`
		} `json:"channels"`
		Components struct {
			Messages map[string]struct {
				Name    string          `json:"name"`
				Headers json.RawMessage `json:"headers"`
				Payload json.RawMessage `json:"payload"`
			} `json:"messages"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decode the AsyncAPI document: %w", err)
	}
	tree, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("decode the AsyncAPI document: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7) // AsyncAPI's schema format is a superset of draft 7
	c.AssertFormat()
	if err := c.AddResource(docURL, tree); err != nil {
		return nil, fmt.Errorf("add the AsyncAPI document: %w", err)
	}
	d := &document{channels: map[string][]message{}}
	for _, ch := range doc.Channels {
		for _, ref := range ch.Messages {
			key := strings.TrimPrefix(ref["$ref"], "#/components/messages/")
			m, ok := doc.Components.Messages[key]
			if !ok {
				return nil, fmt.Errorf("channel %s: no message %q", ch.Address, key)
			}
			cm := message{name: m.Name}
			if cm.headers, err = c.Compile(docURL + "#/components/messages/" + key + "/headers"); err != nil {
				return nil, fmt.Errorf("message %s headers: %w", key, err)
			}
			if cm.payload, err = c.Compile(docURL + "#/components/messages/" + key + "/payload"); err != nil {
				return nil, fmt.Errorf("message %s payload: %w", key, err)
			}
			d.channels[ch.Address] = append(d.channels[ch.Address], cm)
		}
	}
	return d, nil
}

// Headers returns e's attributes as binary mode names them in Kafka record
// headers: ce_<attribute> for every attribute and extension, and
// content-type for datacontenttype.
func Headers(e cloudevents.Event) map[string]any {
	h := map[string]any{
		"ce_specversion": e.SpecVersion(), "ce_id": e.ID(), "ce_source": e.Source(), "ce_type": e.Type(),
	}
	if e.Subject() != "" {
		h["ce_subject"] = e.Subject()
	}
	if !e.Time().IsZero() {
		h["ce_time"] = e.Time().UTC().Format("2006-01-02T15:04:05.999999999Z07:00")
	}
	if e.DataContentType() != "" {
		h["content-type"] = e.DataContentType()
	}
	for k, v := range e.Extensions() {
		h["ce_"+k] = fmt.Sprint(v)
	}
	return h
}

// Validate checks e, read from topic, against the document: its type must
// be a message of that channel (on deadletters, any type with the
// dead-letter extensions), its attributes must fit the message's headers,
// its data the message's payload, and subject, partitionkey and the data's
// orderId must name the same order.
func Validate(topic string, e cloudevents.Event) error {
	d, err := load()
	if err != nil {
		return err
	}
	msgs, ok := d.channels[topic]
	if !ok {
		return fmt.Errorf("topic %s is no channel of the AsyncAPI document", topic)
	}
	var m *message
	for i := range msgs {
		if msgs[i].name == e.Type() || topic == events.TopicDeadLetters {
			m = &msgs[i]
			break
		}
	}
	if m == nil {
		return fmt.Errorf("event type %q is no message of channel %s", e.Type(), topic)
	}
	var errs []error
	if err := m.headers.Validate(Headers(e)); err != nil {
		errs = append(errs, fmt.Errorf("attributes: %w", err))
	}
	if topic == events.TopicDeadLetters {
		return errors.Join(errs...)
	}
	data, err := jsonschema.UnmarshalJSON(bytes.NewReader(e.Data()))
	if err != nil {
		return fmt.Errorf("%s %s: data is not JSON: %w", e.Type(), e.ID(), err)
	}
	if err := m.payload.Validate(data); err != nil {
		errs = append(errs, fmt.Errorf("data: %w", err))
	}
	if obj, ok := data.(map[string]any); ok {
		pk, _ := e.Extensions()[events.ExtPartitionKey].(string)
		if id, _ := obj["orderId"].(string); id != e.Subject() || id != pk {
			errs = append(errs, fmt.Errorf("subject %q, partitionkey %q and data orderId %q name different orders", e.Subject(), pk, id))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s %s on %s: %w", e.Type(), e.ID(), topic, errors.Join(errs...))
	}
	return nil
}
