package eventlog

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"unique"
)

// TestMemoAnswersEachQuestion asks one event six questions (more than its
// slots) from many goroutines at once: every asker gets its own
// question's answer, and once answered a question is not computed again.
func TestMemoAnswersEachQuestion(t *testing.T) {
	e := &Event{Seq: 1}
	keys := make([]unique.Handle[string], memoSlots+2)
	var calls [memoSlots + 2]atomic.Int32
	for i := range keys {
		keys[i] = unique.Make(fmt.Sprintf("caller-%d\x00posts", i))
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 50 {
				k := (g + r) % len(keys)
				got := e.Memo(keys[k], func() bool { calls[k].Add(1); return k%2 == 1 })
				if got != (k%2 == 1) {
					t.Errorf("question %d answered %v", k, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	for k := range keys {
		before := calls[k].Load()
		if before == 0 {
			t.Fatalf("question %d never computed", k)
		}
		if e.Memo(keys[k], func() bool { calls[k].Add(1); return false }) != (k%2 == 1) || calls[k].Load() != before {
			t.Fatalf("question %d computed again or answered differently", k)
		}
	}
}

// TestSinceIntoReuses reads the ring into a caller's slice without
// allocating.
func TestSinceIntoReuses(t *testing.T) {
	h := NewHub(64, 0)
	for i := int64(1); i <= 10; i++ {
		h.Publish([]*Event{{Seq: i, Type: RecordCreated}})
	}
	buf := make([]*Event, 0, 16)
	evs, ok, _ := h.SinceInto(0, 2, 16, buf)
	if !ok || len(evs) != 8 || evs[0].Seq != 3 || evs[7].Seq != 10 || &evs[0] != &buf[:1][0] {
		t.Fatalf("ok %v, %d events, into the caller's slice: %v", ok, len(evs), len(evs) > 0 && &evs[0] == &buf[:1][0])
	}
	if n := testing.AllocsPerRun(100, func() { evs, _, _ = h.SinceInto(0, 0, 16, evs) }); n != 0 {
		t.Fatalf("%v allocations per read", n)
	}
}
