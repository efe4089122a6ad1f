package feed

import (
	"context"
	"testing"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// fakeSource lets only "alice" see events and counts the rule checks.
type fakeSource struct {
	coll   *schema.Collection
	checks int
}

func (f *fakeSource) Collection(name string) (*schema.Collection, error) {
	if name != f.coll.Name {
		return nil, mantle.Errorf(mantle.NotFound, "collection.not_found", "no %s", name)
	}
	return f.coll, nil
}
func (f *fakeSource) Schema() *schema.Schema {
	return &schema.Schema{Collections: []*schema.Collection{f.coll}}
}
func (f *fakeSource) CanSee(id mantle.Identity, ev *eventlog.Event) bool {
	f.checks++
	return id.ID == "alice"
}
func (f *fakeSource) CanSeePrevious(id mantle.Identity, ev *eventlog.Event) bool {
	return false
}
func (f *fakeSource) CompileFilter(coll, src string) (query.Expr, error) {
	comp, err := query.NewCompiler(f.coll)
	if err != nil {
		return nil, err
	}
	return comp.Compile(src)
}
func (f *fakeSource) StoreEvents(ctx context.Context, fl store.EventFilter) ([]*eventlog.Event, error) {
	return nil, nil
}

// Subscribers that ask the same question share one rule check per event;
// different identities never share an answer.
func TestMatcherMemo(t *testing.T) {
	src := &fakeSource{coll: &schema.Collection{Name: "notes", Fields: []*schema.Field{{Name: "n", Type: schema.Number}}}}
	data := eventlog.NewRecordData([]byte(`{"id":"r1","createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z","version":1,"n":5}`), nil, nil)
	ev := &eventlog.Event{Seq: 1, Type: eventlog.RecordCreated, Collection: "notes", Subject: "r1", Time: time.Now(), Data: data}
	alice := mantle.Identity{ID: "alice"}
	var ms []*Matcher
	for i := 0; i < 100; i++ {
		m, err := NewMatcher(src, alice, Spec{Collections: []string{"notes"}, Filter: "n > 3"})
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	for _, m := range ms {
		if !m.Match(ev) {
			t.Fatal("alice's subscriber missed the event")
		}
	}
	if src.checks != 1 {
		t.Errorf("%d rule checks for 100 identical subscribers, want 1", src.checks)
	}
	bob, _ := NewMatcher(src, mantle.Identity{ID: "bob"}, Spec{Collections: []string{"notes"}, Filter: "n > 3"})
	if bob.Match(ev) {
		t.Error("bob shared alice's answer")
	}
	other, _ := NewMatcher(src, alice, Spec{Collections: []string{"notes"}, Filter: "n > 7"})
	if other.Match(ev) {
		t.Error("a different filter shared the answer")
	}
	if _, err := NewMatcher(src, alice, Spec{Collections: []string{"nope"}}); mantle.ErrorCode(err) != mantle.NotFound {
		t.Errorf("unknown collection: %v", err)
	}
	if _, err := NewMatcher(src, alice, Spec{Filter: "n ==="}); mantle.ErrorCode(err) != mantle.Invalid {
		t.Errorf("bad filter: %v", err)
	}
}
