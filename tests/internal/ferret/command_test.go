package ferret

import (
	"encoding/binary"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// opMsgBody builds an OP_MSG body: flagBits, then the sections as given.
func opMsgBody(flags uint32, sections ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, flags)
	for _, s := range sections {
		b = append(b, s...)
	}
	return b
}

func bodySection(t *testing.T, doc bson.D) []byte {
	t.Helper()
	raw, err := bson.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{0}, raw...)
}

func sequenceSection(t *testing.T, id string, docs ...bson.D) []byte {
	t.Helper()
	payload := append([]byte(id), 0)
	for _, d := range docs {
		raw, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		payload = append(payload, raw...)
	}
	return append(binary.LittleEndian.AppendUint32([]byte{1}, uint32(4+len(payload))), payload...)
}

// TestCommandIsFirstKeyOfBodySection pins down how the proxy names a
// command: the first key of the kind-0 section, wherever that section is,
// skipping document sequences and a trailing checksum.
func TestCommandIsFirstKeyOfBodySection(t *testing.T) {
	update := bodySection(t, bson.D{{Key: "update", Value: "docs"}, {Key: "$db", Value: "proxy"}})
	insert := bodySection(t, bson.D{{Key: "insert", Value: "docs"}, {Key: "$db", Value: "proxy"}})
	docs := sequenceSection(t, "documents", bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}})
	checksum := []byte{1, 2, 3, 4}
	for _, c := range []struct {
		name  string
		body  []byte
		want  string
		flags uint32
	}{
		{"body only", opMsgBody(0, update), "update", 0},
		{"body then sequence", opMsgBody(0, insert, docs), "insert", 0},
		{"sequence then body", opMsgBody(0, docs, insert), "insert", 0},
		{"moreToCome and checksum", opMsgBody(flagMoreToCome|flagChecksumPresent, docs, update, checksum), "update", flagMoreToCome | flagChecksumPresent},
	} {
		name, flags, err := command(c.body)
		if err != nil || name != c.want || flags != c.flags {
			t.Errorf("%s: command %q, flags %b, error %v; want %q, %b", c.name, name, flags, err, c.want, c.flags)
		}
	}
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"no body section", opMsgBody(0, docs)},
		{"truncated body section", opMsgBody(0, update[:len(update)-3])},
		{"unknown section kind", opMsgBody(0, append([]byte{2}, update[1:]...))},
		{"no sections", opMsgBody(0)},
	} {
		if name, _, err := command(c.body); err == nil {
			t.Errorf("%s: command %q; want an error", c.name, name)
		}
	}
}
