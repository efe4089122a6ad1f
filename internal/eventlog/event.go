// Package eventlog defines the event envelope of the log (CloudEvents 1.0
// with an integer seq extension) and the hub that tells subscribers about
// newly committed events.
package eventlog

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/mantlehq/mantle/internal/schema"
)

// Event types.
const (
	RecordCreated = "record.created"
	RecordUpdated = "record.updated"
	RecordDeleted = "record.deleted"
	SchemaApplied = "schema.applied"

	// Audit events, visible to administrators only.
	AuthSignup          = "auth.signup"
	AuthLogin           = "auth.login"
	AuthLoginFailed     = "auth.login_failed"
	AuthLogout          = "auth.logout"
	AuthRefreshReuse    = "auth.refresh_reused"
	AuthKeyCreated      = "auth.key_created"
	AuthKeyRevoked      = "auth.key_revoked"
	AuthRolesChanged    = "auth.roles_changed"
	AuthPasswordChanged = "auth.password_changed"
	AuthIdentityLinked  = "auth.identity_linked"
)

// Event is one entry of the log. Seq is assigned by the store when the
// event is appended; sequences start at 1 and have no gaps.
type Event struct {
	Seq        int64
	Type       string
	Collection string // empty for events that are not about a collection
	Subject    string // the record id, if any
	Time       time.Time
	Actor      string          // the identity that caused it; empty when anonymous
	Data       json.RawMessage // the CloudEvents data

	encoded   []byte    // the CloudEvents JSON, set once by Hub.Publish
	published time.Time // when Hub.Publish had it: right after its commit
	sse       atomic.Pointer[[]byte]
	record    atomic.Pointer[parsed]
	previous  atomic.Pointer[parsed]
	bare      atomic.Pointer[Event]                // see WithoutPrevious
	memo      [memoSlots]atomic.Pointer[memoEntry] // see Memo
	memoMore  sync.Map                             // unique.Handle[string] → bool, beyond memoSlots
}

// memoSlots is how many distinct questions an event answers without a
// map: under fan-out most subscribers share one or a few.
const memoSlots = 4

type memoEntry struct {
	key unique.Handle[string]
	yes bool
}

// Published returns when the hub was given the event, right after its
// transaction committed; zero for an event read from the store.
func (e *Event) Published() time.Time { return e.published }

// Memo returns the answer to a question about this event, computing it
// with fn the first time key is asked. Subscribers that ask the same
// question (same identity, same filter) share one evaluation per event.
// The first few questions are kept in slots compared by handle (a pointer
// comparison), the rest in a map: with a thousand subscribers asking one
// question, a map lookup per event and subscriber hashing the long key
// was a twentieth of the server's CPU.
func (e *Event) Memo(key unique.Handle[string], fn func() bool) bool {
	var mine *memoEntry // the answer, once computed here
	for i := range e.memo {
		m := e.memo[i].Load()
		if m == nil {
			if mine == nil {
				mine = &memoEntry{key: key, yes: fn()}
			}
			if e.memo[i].CompareAndSwap(nil, mine) {
				return mine.yes
			}
			m = e.memo[i].Load() // another question took the slot meanwhile
		}
		if m.key == key {
			return m.yes
		}
	}
	if v, ok := e.memoMore.Load(key); ok {
		return v.(bool)
	}
	if mine == nil {
		mine = &memoEntry{key: key, yes: fn()}
	}
	e.memoMore.Store(key, mine.yes)
	return mine.yes
}

type parsed struct {
	coll *schema.Collection
	rec  *schema.Record
	err  error
}

// Record returns the record a record event carries (for a deletion, the
// record as it was), parsed once per collection schema and shared by every
// subscriber that checks a rule on it.
func (e *Event) Record(c *schema.Collection) (*schema.Record, error) {
	return e.parse(&e.record, c, true, func(d RecordData) json.RawMessage { return d.Record })
}

// Previous returns the record as it was before an update (nil for an event
// that carries no previous state), parsed once per collection schema.
func (e *Event) Previous(c *schema.Collection) (*schema.Record, error) {
	return e.parse(&e.previous, c, false, func(d RecordData) json.RawMessage { return d.Previous })
}

// parse reads the state pick chooses from the event's data into slot,
// once per collection schema; a state that is not there is nil, or an
// error when required.
func (e *Event) parse(slot *atomic.Pointer[parsed], c *schema.Collection, required bool, pick func(RecordData) json.RawMessage) (*schema.Record, error) {
	if p := slot.Load(); p != nil && p.coll == c {
		return p.rec, p.err
	}
	p := &parsed{coll: c}
	var d RecordData
	if p.err = json.Unmarshal(e.Data, &d); p.err == nil {
		if raw := pick(d); required || len(raw) > 0 && string(raw) != "null" {
			p.rec, p.err = c.ParseRecord(raw)
		}
	}
	slot.Store(p)
	return p.rec, p.err
}

// HasPrevious reports whether the event carries a record's previous state
// (a record.updated event).
func (e *Event) HasPrevious() bool { return e.Type == RecordUpdated }

// WithoutPrevious returns the event as a reader who may not view the
// record's previous state receives it: the same envelope and record, the
// names in changed, and no previous. It is built once per event and
// shared, with its own rendered JSON and SSE frame, by every subscriber
// that gets it. An event without a previous state is returned as it is.
func (e *Event) WithoutPrevious() *Event {
	if !e.HasPrevious() {
		return e
	}
	if b := e.bare.Load(); b != nil {
		return b
	}
	b := &Event{Seq: e.Seq, Type: e.Type, Collection: e.Collection, Subject: e.Subject, Time: e.Time,
		Actor: e.Actor, published: e.published}
	var d RecordData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		b.Data = json.RawMessage(`null`)
	} else {
		if d.Changed == nil {
			d.Changed = []string{}
		}
		b.Data, _ = json.Marshal(struct {
			Record  json.RawMessage `json:"record"`
			Changed []string        `json:"changed"`
		}{d.Record, d.Changed})
	}
	b.record.Store(e.record.Load())
	b.encoded = b.AppendJSON(nil)
	if !e.bare.CompareAndSwap(nil, b) {
		return e.bare.Load()
	}
	return b
}

// JSON returns the event as CloudEvents JSON, rendered once when the event
// was published, so a hundred subscribers do not encode it a hundred times.
func (e *Event) JSON() []byte {
	if e.encoded != nil {
		return e.encoded
	}
	return e.AppendJSON(nil)
}

// SSE returns the event as one Server-Sent Events message (its id, type
// and JSON data, then a blank line), rendered once and shared by every
// stream that sends it.
func (e *Event) SSE() []byte {
	if p := e.sse.Load(); p != nil {
		return *p
	}
	j := e.JSON()
	b := make([]byte, 0, len(j)+len(e.Type)+40)
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, e.Seq, 10)
	if !strings.ContainsAny(e.Type, "\r\n") { // a line break would end the field early
		b = append(b, "\nevent: "...)
		b = append(b, e.Type...)
	}
	b = append(b, "\ndata: "...)
	b = append(b, j...)
	b = append(b, "\n\n"...)
	e.sse.Store(&b)
	return b
}

// Source is the CloudEvents source: /collections/NAME, or /schema.
func (e *Event) Source() string {
	if e.Collection != "" {
		return "/collections/" + e.Collection
	}
	return "/" + stringsBefore(e.Type, '.')
}

func stringsBefore(s string, c byte) string {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i]
		}
	}
	return s
}

// AppendJSON appends the event as a CloudEvents 1.0 JSON object.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"specversion":"1.0","id":"`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"source":`...)
	b = schema.AppendString(b, e.Source())
	b = append(b, `,"type":`...)
	b = schema.AppendString(b, e.Type)
	if e.Subject != "" {
		b = append(b, `,"subject":`...)
		b = schema.AppendString(b, e.Subject)
	}
	b = append(b, `,"time":"`...)
	b = e.Time.UTC().AppendFormat(b, schema.TimeFormat)
	b = append(b, '"')
	if e.Actor != "" {
		b = append(b, `,"actor":`...)
		b = schema.AppendString(b, e.Actor)
	}
	b = append(b, `,"datacontenttype":"application/json","data":`...)
	if len(e.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Data...)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (e *Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// RecordData is the data of a record event.
type RecordData struct {
	Record   json.RawMessage `json:"record"`
	Previous json.RawMessage `json:"previous,omitempty"`
	Changed  []string        `json:"changed,omitempty"`
}

// NewRecordData encodes the data of a record event.
func NewRecordData(record, previous json.RawMessage, changed []string) json.RawMessage {
	b := append([]byte(`{"record":`), record...)
	if previous != nil {
		b = append(b, `,"previous":`...)
		b = append(b, previous...)
		b = append(b, `,"changed":`...)
		if changed == nil {
			changed = []string{}
		}
		c, _ := json.Marshal(changed)
		b = append(b, c...)
	}
	return append(b, '}')
}
