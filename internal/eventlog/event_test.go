package eventlog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mantlehq/mantle"
)

// Every event renders as valid JSON whatever its strings hold (an
// automation's subject: expression can put any text there), and the
// strings read back as they were.
func FuzzEventJSON(f *testing.F) {
	f.Add("record.updated", "posts", "r1", "u1", `{"record":{"a":1},"previous":{"a":0},"changed":["a"]}`)
	f.Add("order.paid", "", "line\x01break\n\"quoted\"\\", "<script>&", `{"x":"\u0000"}`)
	f.Add("t", "c", "\xff\xfe", "\u2028", `null`)
	f.Fuzz(func(t *testing.T, typ, coll, subject, actor, data string) {
		if !json.Valid([]byte(data)) {
			data = `{}`
		}
		e := &Event{Seq: 7, Type: typ, Collection: coll, Subject: subject, Actor: actor, Time: time.Unix(1, 0), Data: json.RawMessage(data)}
		for _, ev := range []*Event{e, e.WithoutPrevious()} {
			b := ev.AppendJSON(nil)
			if !json.Valid(b) {
				t.Fatalf("invalid JSON: %q", b)
			}
			var back struct{ Type, Subject, Actor string }
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if utf8.ValidString(typ) && utf8.ValidString(subject) && utf8.ValidString(actor) && (back.Type != typ || back.Subject != subject || back.Actor != actor) {
				t.Fatalf("read back %+v from %q", back, b)
			}
			sse := string(ev.SSE())
			if strings.Count(sse, "\n\n") != 1 || !strings.HasSuffix(sse, "\n\n") {
				t.Fatalf("the SSE frame breaks its lines: %q", sse)
			}
		}
	})
}

// An update without its previous state keeps the record and the changed
// names, and is rendered once for every subscriber.
func TestWithoutPrevious(t *testing.T) {
	e := &Event{Seq: 3, Type: RecordUpdated, Collection: "posts", Subject: "r1", Time: time.Unix(1, 0),
		Data: NewRecordData([]byte(`{"id":"r1","t":"new"}`), []byte(`{"id":"r1","t":"old"}`), []string{"t"})}
	b := e.WithoutPrevious()
	if got := string(b.Data); got != `{"record":{"id":"r1","t":"new"},"changed":["t"]}` {
		t.Errorf("data %s", got)
	}
	if e.WithoutPrevious() != b {
		t.Error("built twice")
	}
	if c := (&Event{Type: RecordCreated}); c.WithoutPrevious() != c {
		t.Error("a created event changed")
	}
}

// Custom types cannot enter Mantle's own families by changing letter case.
func TestCheckCustomType(t *testing.T) {
	for typ, reason := range map[string]string{
		"order.paid": "", "Order.Paid-2": "",
		"record.created": "event.reserved_type", "Record.Created": "event.reserved_type", "AUTH.login": "event.reserved_type",
		"Schema.applied": "event.reserved_type", "anomaly.x": "event.reserved_type", "REPLICA.x": "event.reserved_type",
		"nodot": "event.invalid_type", ".a.b": "event.invalid_type", "a.b\n": "event.invalid_type", "a.b c": "event.invalid_type",
	} {
		err := CheckCustomType(typ)
		got := ""
		if err != nil {
			got = mantle.AsError(err).Reason
		}
		if got != reason {
			t.Errorf("%q: %q, want %q", typ, got, reason)
		}
	}
}
