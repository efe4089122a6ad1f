package consumer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/store/sqlite"
)

// memLeases is a Leaser in memory: what internal/bus does over NATS, for
// nodes that share a process.
type memLeases struct {
	mu      sync.Mutex
	held    map[string]bool
	changed chan struct{}
}

func newMemLeases() *memLeases {
	return &memLeases{held: map[string]bool{}, changed: make(chan struct{})}
}

func (m *memLeases) Hold(ctx context.Context, name string) (context.Context, func(), error) {
	for {
		m.mu.Lock()
		if !m.held[name] {
			m.held[name] = true
			m.mu.Unlock()
			held, cancel := context.WithCancel(ctx)
			return held, func() {
				cancel()
				m.mu.Lock()
				delete(m.held, name)
				close(m.changed)
				m.changed = make(chan struct{})
				m.mu.Unlock()
			}, nil
		}
		wait := m.changed
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-wait:
		}
	}
}

func testEngine(t *testing.T) (*engine.Engine, *eventlog.Hub) {
	t.Helper()
	hub := eventlog.NewHub(0, 0)
	st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{OnCommit: hub.Publish})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := engine.New(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return eng, hub
}

// TestLeasedConsumerRunsOnOneNode starts the same consumer on two
// "nodes": only the lease holder handles events, each once; when the
// holder stops, the other takes over from the saved cursor.
func TestLeasedConsumerRunsOnOneNode(t *testing.T) {
	eng, hub := testEngine(t)
	leases := newMemLeases()
	var mu sync.Mutex
	handled := map[int64][]string{}
	progress := make(chan struct{}, 1000)
	start := func(node string) (context.CancelFunc, *Consumer) {
		ctx, cancel := context.WithCancel(context.Background())
		c, err := Start(ctx, Spec{Name: "audit", Kind: "test", Engine: eng, Hub: hub, Lease: leases, FromStart: true,
			Match: func(e *eventlog.Event) bool { return e.Type == "custom.tick" },
			Handle: func(_ context.Context, e *eventlog.Event, _ int) error {
				mu.Lock()
				handled[e.Seq] = append(handled[e.Seq], node)
				mu.Unlock()
				progress <- struct{}{}
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		return cancel, c
	}
	emit := func(n int) {
		for range n {
			if _, err := eng.Emit(context.Background(), "custom.tick", "", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitHandled := func(n int) {
		timeout := time.After(10 * time.Second)
		for range n {
			select {
			case <-progress:
			case <-timeout:
				t.Fatalf("waiting for %d more events", n)
			}
		}
	}
	stopA, a := start("a")
	stopB, b := start("b")
	defer stopA()
	defer stopB()
	emit(30)
	waitHandled(30)
	// Stop the node that took the lease (either may have): its cursor is
	// saved and its lease given up; the other takes over.
	mu.Lock()
	first := handled[firstSeq(handled)][0]
	mu.Unlock()
	stopHolder, holder, stopOther, other := stopA, a, stopB, b
	if first == "b" {
		stopHolder, holder, stopOther, other = stopB, b, stopA, a
	}
	stopHolder()
	holder.Wait()
	emit(30)
	waitHandled(30)
	stopOther()
	other.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 60 {
		t.Fatalf("%d events handled, want 60", len(handled))
	}
	by := map[string]int{}
	for seq, nodes := range handled {
		if len(nodes) != 1 {
			t.Fatalf("event %d handled by %v", seq, nodes)
		}
		by[nodes[0]]++
	}
	if by[first] != 30 || len(by) != 2 {
		t.Fatalf("handled by node: %v; want 30 by the first holder (%s), 30 by the other", by, first)
	}
}

func firstSeq(m map[int64][]string) int64 {
	first := int64(-1)
	for seq := range m {
		if first < 0 || seq < first {
			first = seq
		}
	}
	return first
}

// TestLeasedScheduleFiresOnce runs one schedule on two "nodes": each
// tick fires once.
func TestLeasedScheduleFiresOnce(t *testing.T) {
	eng, _ := testEngine(t)
	leases := newMemLeases()
	var mu sync.Mutex
	ticks := map[time.Time]int{}
	fired := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	var scs []*Schedule
	for range 2 {
		sc, err := StartSchedule(ctx, ScheduleSpec{Name: "every", Kind: "test", Cron: "@every 1s", Engine: eng, Lease: leases,
			Run: func(_ context.Context, at time.Time, _ bool) error {
				mu.Lock()
				ticks[at]++
				mu.Unlock()
				fired <- struct{}{}
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, sc)
	}
	for range 3 {
		select {
		case <-fired:
		case <-time.After(10 * time.Second):
			t.Fatal("the schedule did not fire")
		}
	}
	cancel()
	for _, sc := range scs {
		sc.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	for at, n := range ticks {
		if n != 1 {
			t.Errorf("tick %v fired %d times", at, n)
		}
	}
}

// TestLeasedReplayFromAnyNode asks for a replay on the node that does not
// run the consumer: the node that does replays.
func TestLeasedReplayFromAnyNode(t *testing.T) {
	eng, hub := testEngine(t)
	leases := newMemLeases()
	var mu sync.Mutex
	handled := map[int64]int{}
	progress := make(chan struct{}, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cs []*Consumer
	for range 2 {
		c, err := Start(ctx, Spec{Name: "audit", Kind: "test", Engine: eng, Hub: hub, Lease: leases, FromStart: true,
			Match: func(e *eventlog.Event) bool { return e.Type == "custom.tick" },
			Handle: func(_ context.Context, e *eventlog.Event, _ int) error {
				mu.Lock()
				handled[e.Seq]++
				mu.Unlock()
				progress <- struct{}{}
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	var first int64
	for i := range 10 {
		seq, err := eng.Emit(context.Background(), "custom.tick", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = seq
		}
	}
	wait := func(n int) {
		timeout := time.After(10 * time.Second)
		for range n {
			select {
			case <-progress:
			case <-timeout:
				t.Fatalf("waiting for %d more handled events", n)
			}
		}
	}
	wait(10)
	// Ask the node that does not run the consumer (its cursor never moved).
	idle := cs[0]
	if idle.Status().Cursor != 0 {
		idle = cs[1]
	}
	if idle.Status().Cursor != 0 {
		t.Fatal("both nodes ran the consumer")
	}
	if err := idle.Replay(first); err != nil {
		t.Fatal(err)
	}
	wait(10)
	mu.Lock()
	defer mu.Unlock()
	for seq, n := range handled {
		if n < 2 {
			t.Errorf("event %d handled %d times after the replay", seq, n)
		}
	}
}
