// Package storetest is the conformance suite of the storage port. Every
// adapter runs it: storetest.Run(t, open).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// Open returns a new, empty store that lives until the test ends.
type Open func(t *testing.T) store.Store

// Run runs the whole suite.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"SchemaRoundTrip", testSchema},
		{"RecordRoundTrip", testRecordRoundTrip},
		{"Conflicts", testConflicts},
		{"SavepointIsolation", testSavepoints},
		{"ConstraintFailuresInABatch", testBatchConstraints},
		{"EventsGapFreeUnderConcurrency", testConcurrentEvents},
		{"EventFilter", testEventFilter},
		{"RecordEvent", testRecordEvent},
		{"ListKeyset", testList},
		{"MigrateSteps", testMigrate},
		{"Secrets", testSecrets},
		{"FilterMatchesEval", testFilterMatchesEval},
		{"EncodedRows", testEncodedRows},
		{"Referencing", testReferencing},
		{"ReadsPassTheGate", testGate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s)
		})
	}
}

func f64(v float64) *float64 { return &v }

// Fixture is the schema the suite migrates to.
func Fixture() *schema.Schema {
	return &schema.Schema{Name: "suite", Collections: []*schema.Collection{{
		Name: "things",
		Fields: []*schema.Field{
			{Name: "name", Type: schema.Text, Required: true, Max: f64(100)},
			{Name: "n", Type: schema.Number, Integer: true},
			{Name: "x", Type: schema.Number},
			{Name: "ok", Type: schema.Bool},
			{Name: "at", Type: schema.Datetime},
			{Name: "doc", Type: schema.JSON},
			{Name: "kind", Type: schema.Select, Values: []string{"a", "b"}},
			{Name: "ref", Type: schema.Relation, Collection: "things"},
		},
		Indexes: []schema.Index{{Fields: []string{"n"}}, {Fields: []string{"name"}, Unique: true}},
		Rules:   schema.Rules{"list": "true"},
	}}}
}

func migrate(t *testing.T, s store.Store, to *schema.Schema) {
	t.Helper()
	from, err := s.Schema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(context.Background(), func(tx store.Tx) error {
		if err := tx.Migrate(from, to, schema.Diff(from, to)); err != nil {
			return err
		}
		return tx.Append(&eventlog.Event{Type: eventlog.SchemaApplied, Time: time.Now(), Data: json.RawMessage(`{}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func things(t *testing.T, s store.Store) *schema.Collection {
	t.Helper()
	migrate(t, s, Fixture())
	return Fixture().Collections[0]
}

var ctx = context.Background()

func record(id, name string, n float64) *schema.Record {
	now := time.Now().UTC()
	return &schema.Record{ID: id, CreatedAt: now, UpdatedAt: now, Version: 1, Data: map[string]any{"name": name, "n": n}}
}

func insert(t *testing.T, s store.Store, c *schema.Collection, recs ...*schema.Record) {
	t.Helper()
	err := s.Write(ctx, func(tx store.Tx) error {
		for _, r := range recs {
			if err := tx.Insert(c, r); err != nil {
				return err
			}
			ev := &eventlog.Event{Type: eventlog.RecordCreated, Collection: c.Name, Subject: r.ID, Time: r.CreatedAt,
				Data: eventlog.NewRecordData(c.MarshalRecord(r), nil, nil)}
			if err := tx.Append(ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testSchema(t *testing.T, s store.Store) {
	got, err := s.Schema(ctx)
	if err != nil || got != nil {
		t.Fatalf("new store: schema %v, %v; want nil", got, err)
	}
	migrate(t, s, Fixture())
	got, err = s.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Fixture(), got); d != "" {
		t.Errorf("schema round trip (-want +got):\n%s", d)
	}
}

func testRecordRoundTrip(t *testing.T, s store.Store) {
	c := things(t, s)
	at := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	r := record("r1", "one", 42)
	r.Data["x"], r.Data["ok"], r.Data["at"] = 1.25, true, at
	r.Data["doc"], r.Data["kind"], r.Data["ref"] = json.RawMessage(`{"a":[1,"b"]}`), "a", "r1"
	insert(t, s, c, r)
	got, err := s.Get(ctx, c, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	upd := got.Clone()
	upd.Version, upd.Data["name"] = 2, "uno"
	delete(upd.Data, "x")
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.Update(c, upd) }); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, c, "r1")
	if d := cmp.Diff(upd, got); d != "" {
		t.Errorf("after update (-want +got):\n%s", d)
	}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.Delete(c, "r1") }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, c, "r1"); mantle.ErrorCode(err) != mantle.NotFound {
		t.Errorf("get after delete: %v, want not_found", err)
	}
	err = s.Write(ctx, func(tx store.Tx) error { return tx.Delete(c, "r1") })
	if mantle.ErrorCode(err) != mantle.NotFound {
		t.Errorf("delete missing: %v, want not_found", err)
	}
}

func testConflicts(t *testing.T, s store.Store) {
	c := things(t, s)
	insert(t, s, c, record("a", "same", 1))
	err := s.Write(ctx, func(tx store.Tx) error { return tx.Insert(c, record("a", "other", 1)) })
	if e := mantle.AsError(err); e == nil || e.Code != mantle.Conflict || e.Reason != "record.exists" {
		t.Errorf("duplicate id: %v", err)
	}
	err = s.Write(ctx, func(tx store.Tx) error { return tx.Insert(c, record("b", "same", 1)) })
	if e := mantle.AsError(err); e == nil || e.Code != mantle.Conflict || e.Reason != "record.unique" || e.Fields["name"] == "" {
		t.Errorf("unique index: %v", err)
	}
}

// testSavepoints runs concurrent writes of which every other fails after
// writing: the failures leave nothing behind, the others all commit.
func testSavepoints(t *testing.T, s store.Store) {
	c := things(t, s)
	var wg sync.WaitGroup
	errFail := errors.New("deliberate")
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("w%03d", i)
			err := s.Write(ctx, func(tx store.Tx) error {
				r := record(id, id, float64(i))
				if err := tx.Insert(c, r); err != nil {
					return err
				}
				if err := tx.Append(&eventlog.Event{Type: eventlog.RecordCreated, Collection: c.Name, Subject: id, Time: time.Now()}); err != nil {
					return err
				}
				if i%2 == 1 {
					return errFail
				}
				return nil
			})
			if (i%2 == 1) != errors.Is(err, errFail) {
				t.Errorf("write %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	for i := 0; i < 100; i++ {
		_, err := s.Get(ctx, c, fmt.Sprintf("w%03d", i))
		if (i%2 == 0) != (err == nil) {
			t.Errorf("record %d: %v", i, err)
		}
	}
	evs, err := s.Events(ctx, store.EventFilter{Limit: 1000, Types: []string{eventlog.RecordCreated}})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 50 {
		t.Errorf("%d created events, want 50", len(evs))
	}
	checkGapFree(t, s)
}

// testBatchConstraints runs concurrent creates of which every fifth breaks
// the unique index, so they share transactions with good ones: each bad
// one gets its conflict (not a neighbour's, not a later one's), every
// good one commits with its event. A store that defers statements must
// still answer each write with its own error.
func testBatchConstraints(t *testing.T, s store.Store) {
	c := things(t, s)
	insert(t, s, c, record("taken", "taken", 0))
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id, name := fmt.Sprintf("b%03d", i), fmt.Sprintf("b%03d", i)
			if i%5 == 0 {
				name = "taken"
			}
			err := s.Write(ctx, func(tx store.Tx) error {
				r := record(id, name, float64(i))
				if err := tx.Insert(c, r); err != nil {
					return err
				}
				return tx.Append(&eventlog.Event{Type: eventlog.RecordCreated, Collection: c.Name, Subject: id, Time: time.Now()})
			})
			if i%5 == 0 {
				if e := mantle.AsError(err); e == nil || e.Reason != "record.unique" || e.Fields["name"] == "" {
					t.Errorf("write %d (duplicate name): %v", i, err)
				}
			} else if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	for i := 0; i < 100; i++ {
		_, err := s.Get(ctx, c, fmt.Sprintf("b%03d", i))
		if (i%5 != 0) != (err == nil) {
			t.Errorf("record %d: %v", i, err)
		}
	}
	evs, _ := s.Events(ctx, store.EventFilter{Limit: 1000, Types: []string{eventlog.RecordCreated}})
	if len(evs) != 81 {
		t.Errorf("%d created events, want 81", len(evs))
	}
	checkGapFree(t, s)
}

func checkGapFree(t *testing.T, s store.Store) {
	t.Helper()
	evs, err := s.Events(ctx, store.EventFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: the log has a gap", i, e.Seq)
		}
	}
	last, _ := s.LastSeq(ctx)
	if last != int64(len(evs)) {
		t.Errorf("LastSeq %d, log has %d events", last, len(evs))
	}
}

// testConcurrentEvents has many writers and a tailing reader: the reader
// must see every sequence exactly once, in order.
func testConcurrentEvents(t *testing.T, s store.Store) {
	c := things(t, s)
	start, _ := s.LastSeq(ctx)
	const writers, each = 8, 40
	done := make(chan struct{})
	seen := make(chan []int64, 1)
	go func() {
		var got []int64
		after := start
		for {
			evs, err := s.Events(ctx, store.EventFilter{After: after, Limit: 50})
			if err != nil {
				t.Error(err)
				break
			}
			for _, e := range evs {
				got = append(got, e.Seq)
				after = e.Seq
			}
			if len(evs) == 0 {
				select {
				case <-done:
					if evs, _ := s.Events(ctx, store.EventFilter{After: after, Limit: 1}); len(evs) == 0 {
						seen <- got
						return
					}
				default:
				}
				time.Sleep(time.Millisecond)
			}
		}
		seen <- got
	}()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("c%d-%d", w, i)
				insert(t, s, c, record(id, id, 0))
			}
		}(w)
	}
	wg.Wait()
	close(done)
	got := <-seen
	if len(got) != writers*each {
		t.Fatalf("reader saw %d events, want %d", len(got), writers*each)
	}
	for i, seq := range got {
		if seq != start+int64(i)+1 {
			t.Fatalf("reader saw seq %d at position %d, want %d", seq, i, start+int64(i)+1)
		}
	}
	checkGapFree(t, s)
}

func testEventFilter(t *testing.T, s store.Store) {
	c := things(t, s)
	insert(t, s, c, record("e1", "e1", 1), record("e2", "e2", 2))
	evs, err := s.Events(ctx, store.EventFilter{Collections: []string{"things"}, Types: []string{eventlog.RecordCreated}, Limit: 10})
	if err != nil || len(evs) != 2 || evs[0].Subject != "e1" || evs[1].Subject != "e2" {
		t.Fatalf("filtered events: %v %v", evs, err)
	}
	evs, _ = s.Events(ctx, store.EventFilter{After: evs[0].Seq, Limit: 1})
	if len(evs) != 1 || evs[0].Subject != "e2" {
		t.Errorf("after/limit: %v", evs)
	}
	evs, _ = s.Events(ctx, store.EventFilter{Collections: []string{"other"}, Limit: 10})
	if len(evs) != 0 {
		t.Errorf("other collection: %v", evs)
	}
}

func testRecordEvent(t *testing.T, s store.Store) {
	c := things(t, s)
	insert(t, s, c, record("h", "h", 1))
	first, _ := s.LastSeq(ctx)
	insert(t, s, c, record("other", "other", 1))
	e, err := s.RecordEvent(ctx, "things", "h", first+1)
	if err != nil || e.Seq != first || e.Subject != "h" {
		t.Errorf("record event: %v %v", e, err)
	}
	if _, err := s.RecordEvent(ctx, "things", "h", first-1); mantle.ErrorCode(err) != mantle.NotFound {
		t.Errorf("before creation: %v", err)
	}
}

func testList(t *testing.T, s store.Store) {
	c := things(t, s)
	for i := 0; i < 25; i++ {
		r := record(fmt.Sprintf("l%02d", i), fmt.Sprintf("name%02d", i), float64(i%5))
		if i%7 == 0 {
			delete(r.Data, "n")
		}
		insert(t, s, c, r)
	}
	comp, err := query.NewCompiler(c)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := comp.Compile(`n >= 1 || n == null`)
	if err != nil {
		t.Fatal(err)
	}
	sort, _ := query.ParseSort(c, "-n")
	q := &query.Query{Filter: filter, Sort: sort, Limit: 4, Count: true}
	var ids []string
	for pages := 0; ; pages++ {
		p, err := s.List(ctx, c, q)
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != 21 {
			t.Fatalf("total %d, want 21", p.Total)
		}
		for _, r := range p.Records {
			ids = append(ids, r.ID)
		}
		if !p.More {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		q.After = cursorValues(q, p.Records[len(p.Records)-1])
	}
	if len(ids) != 21 {
		t.Fatalf("walked %d records, want 21: %v", len(ids), ids)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("record %s twice", id)
		}
		seen[id] = true
	}
	if ids[len(ids)-1] != "l00" && ids[len(ids)-4] != "l21" {
		t.Errorf("nulls should sort last when descending: %v", ids)
	}
}

func cursorValues(q *query.Query, r *schema.Record) []any {
	var out []any
	for _, k := range q.Sort {
		out = append(out, query.Value(r, k.Col.Name))
	}
	return out
}

func testMigrate(t *testing.T, s store.Store) {
	c := things(t, s)
	insert(t, s, c, record("m1", "m1", 7))
	next := Fixture()
	tc := next.Collections[0]
	tc.Fields = append(tc.Fields[:1], tc.Fields[2:]...) // drop n (and its index)
	tc.Indexes = tc.Indexes[1:]
	tc.Fields = append(tc.Fields, &schema.Field{Name: "extra", Type: schema.Text})
	next.Collections = append(next.Collections, &schema.Collection{Name: "more", Fields: []*schema.Field{{Name: "v", Type: schema.Text}}})
	migrate(t, s, next)
	got, err := s.Get(ctx, tc, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if _, has := got.Data["n"]; has || got.Data["name"] != "m1" {
		t.Errorf("after migration: %v", got.Data)
	}
	r := record("m2", "m2", 0)
	delete(r.Data, "n")
	r.Data["extra"] = "e"
	insert(t, s, tc, r)
	applied, _ := s.Schema(ctx)
	if applied.Collection("more") == nil || applied.Collection("things").Field("n") != nil {
		t.Errorf("applied schema not recorded: %+v", applied)
	}
	// A unique index over duplicate values fails clearly and changes nothing.
	insert(t, s, tc, func() *schema.Record {
		r := record("m3", "m3", 0)
		delete(r.Data, "n")
		r.Data["extra"] = "e"
		return r
	}())
	dup := &schema.Schema{Name: next.Name, Collections: next.Collections}
	withIdx := *tc
	withIdx.Indexes = append(append([]schema.Index{}, tc.Indexes...), schema.Index{Fields: []string{"extra"}, Unique: true})
	dup.Collections = []*schema.Collection{dup.Collections[0], &withIdx}
	dup.Sort()
	err = s.Write(ctx, func(tx store.Tx) error { return tx.Migrate(next, dup, schema.Diff(next, dup)) })
	if mantle.ErrorCode(err) != mantle.Conflict {
		t.Errorf("unique index over duplicates: %v", err)
	}
	applied, _ = s.Schema(ctx)
	if len(applied.Collection("things").Indexes) != 1 {
		t.Errorf("failed migration changed the applied schema")
	}
}

func testSecrets(t *testing.T, s store.Store) {
	put := func(kind, key, value string, fail bool) error {
		return s.Write(ctx, func(tx store.Tx) error {
			if err := tx.PutSecret(kind, key, []byte(value)); err != nil {
				return err
			}
			got, err := tx.Secret(kind, key)
			if err != nil || string(got) != value {
				return fmt.Errorf("read own write: %q %v", got, err)
			}
			if fail {
				return errors.New("deliberate")
			}
			return nil
		})
	}
	if err := put("password", "u1", "hash-1", false); err != nil {
		t.Fatal(err)
	}
	if err := put("password", "u1", "hash-2", false); err != nil {
		t.Fatal(err)
	}
	if err := put("password", "u2", "rolled back", true); err == nil {
		t.Fatal("the failing write succeeded")
	}
	if err := put("session", "u1", "other kind", false); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Secret(ctx, "password", "u1"); err != nil || string(v) != "hash-2" {
		t.Errorf("password u1: %q %v, want the replaced value", v, err)
	}
	if _, err := s.Secret(ctx, "password", "u2"); mantle.ErrorCode(err) != mantle.NotFound {
		t.Errorf("a rolled-back secret: %v, want not_found", err)
	}
	all, err := s.Secrets(ctx, "password")
	if err != nil || len(all) != 1 || string(all["u1"]) != "hash-2" {
		t.Errorf("Secrets: %q %v", all, err)
	}
	var deleted, again bool
	err = s.Write(ctx, func(tx store.Tx) error {
		var err error
		if deleted, err = tx.DeleteSecret("password", "u1"); err != nil {
			return err
		}
		again, err = tx.DeleteSecret("password", "u1")
		return err
	})
	if err != nil || !deleted || again {
		t.Errorf("delete: %v %v %v", deleted, again, err)
	}
	if _, err := s.Secret(ctx, "password", "u1"); mantle.ErrorCode(err) != mantle.NotFound {
		t.Errorf("deleted secret: %v", err)
	}
	if v, err := s.Secret(ctx, "session", "u1"); err != nil || string(v) != "other kind" {
		t.Errorf("kinds are separate: %q %v", v, err)
	}
	// CreateSecret: the first value stays, every caller gets it.
	var got [8][]byte
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Write(ctx, func(tx store.Tx) error {
				v, err := tx.CreateSecret("signing", "k", []byte(fmt.Sprintf("value-%d", i)))
				got[i] = v
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	stored, err := s.Secret(ctx, "signing", "k")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if string(v) != string(stored) {
			t.Errorf("creator %d got %q, the store holds %q", i, v, stored)
		}
	}
}

// testReferencing finds the records whose relation field holds an id, in
// id order, up to the limit, inside the write transaction.
func testReferencing(t *testing.T, s store.Store) {
	c := things(t, s)
	target := record("t0", "target", 0)
	insert(t, s, c, target)
	var recs []*schema.Record
	for i := 3; i >= 1; i-- {
		r := record(fmt.Sprintf("r%d", i), fmt.Sprintf("ref %d", i), float64(i))
		r.Data["ref"] = "t0"
		recs = append(recs, r)
	}
	other := record("r9", "other", 9)
	other.Data["ref"] = "nope"
	insert(t, s, c, append(recs, other)...)
	err := s.Write(context.Background(), func(tx store.Tx) error {
		got, err := tx.Referencing(c, "ref", "t0", 2)
		if err != nil {
			return err
		}
		if len(got) != 2 || got[0].ID != "r1" || got[1].ID != "r2" {
			t.Errorf("referencing t0, limit 2: %v", ids(got))
		}
		if got, err := tx.Referencing(c, "ref", "t0", 10); err != nil || len(got) != 3 || got[2].Data["name"] != "ref 3" {
			t.Errorf("referencing t0: %v %v", ids(got), err)
		}
		if got, err := tx.Referencing(c, "ref", "missing", 10); err != nil || len(got) != 0 {
			t.Errorf("referencing nothing: %v %v", ids(got), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func ids(recs []*schema.Record) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

// A list or an events read that asks the database passes the context's
// gate (the engine's anonymous slots) and holds it until done; a gate
// that refuses fails the read with its error. A page a store answers from
// its cache may skip the gate.
func testGate(t *testing.T, s store.Store) {
	c := things(t, s)
	insert(t, s, c, record("g1", "gate", 1))
	refused := errors.New("no slot")
	var entered, released int
	gctx := store.WithGate(ctx, &store.Gate{Timeout: time.Minute, Slot: func(sctx context.Context) (func(), error) {
		if _, ok := sctx.Deadline(); !ok {
			t.Error("the statement's context has no deadline")
		}
		entered++
		if entered > 2 {
			return nil, refused
		}
		return func() { released++ }, nil
	}})
	comp, err := query.NewCompiler(c)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := comp.Compile(`name == "gate"`)
	if err != nil {
		t.Fatal(err)
	}
	sort, _ := query.ParseSort(c, "-n")
	if p, err := s.List(gctx, c, &query.Query{Filter: filter, Sort: sort, Limit: 5}); err != nil || len(p.Records) != 1 {
		t.Fatalf("a list through an open gate: %v", err)
	}
	if _, err := s.Events(gctx, store.EventFilter{Limit: 10}); err != nil {
		t.Fatalf("events through an open gate: %v", err)
	}
	if entered != 2 || released != 2 {
		t.Fatalf("the gate was entered %d and released %d times, want 2 and 2", entered, released)
	}
	if _, err := s.Events(gctx, store.EventFilter{Limit: 10}); !errors.Is(err, refused) {
		t.Fatalf("events through a closed gate: %v", err)
	}
	filter, _ = comp.Compile(`name == "other"`) // not cached
	if _, err := s.List(gctx, c, &query.Query{Filter: filter, Sort: sort, Limit: 5}); !errors.Is(err, refused) {
		t.Fatalf("a list through a closed gate: %v", err)
	}
}
