package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/testenv/natstest"
)

// connect joins a test cluster of its own on the real NATS server
// (MANTLE_TEST_NATS_URL); its stream and bucket are deleted after.
func connect(t *testing.T, url, cluster, node string, ttl time.Duration) *Bus {
	t.Helper()
	b, err := Connect(context.Background(), Options{URL: url, Node: node, Cluster: cluster, LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func testCluster(t *testing.T) (url, name string) {
	t.Helper()
	url = natstest.URL(t)
	r := make([]byte, 4)
	rand.Read(r)
	name = "test-" + hex.EncodeToString(r)
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		js.DeleteStream(context.Background(), strings.ToUpper(name)+"_LOG")
		js.DeleteKeyValue(context.Background(), name+"_leases")
	})
	return url, name
}

func TestAnnouncementsReachEveryNode(t *testing.T) {
	url, name := testCluster(t)
	a, b := connect(t, url, name, "a", 0), connect(t, url, name, "b", 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type heard struct {
		last int64
		evs  []*eventlog.Event
	}
	got := make(chan heard, 16)
	if err := b.Follow(ctx, func(last int64, evs []*eventlog.Event) { got <- heard{last, evs} }); err != nil {
		t.Fatal(err)
	}
	a.nc.Flush()
	b.nc.Flush()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	a.Announce([]*eventlog.Event{{Seq: 4, Type: "record.created", Collection: "posts", Subject: "p1", Time: at, Actor: "u1", Data: []byte(`{"x":1}`)},
		{Seq: 5, Type: "custom.thing", Time: at, Data: []byte(`null`)}})
	big := &eventlog.Event{Seq: 9, Type: "record.created", Collection: "posts", Time: at, Data: []byte(`"` + strings.Repeat("x", maxCarried) + `"`)}
	a.Announce([]*eventlog.Event{big})
	for _, want := range []int64{5, 9} {
		select {
		case h := <-got:
			if h.last != want {
				t.Fatalf("node b heard %d, want %d", h.last, want)
			}
			switch want {
			case 5:
				if len(h.evs) != 2 || h.evs[0].Subject != "p1" || h.evs[0].Actor != "u1" || !h.evs[0].Time.Equal(at) ||
					string(h.evs[0].Data) != `{"x":1}` || h.evs[1].Seq != 5 || h.evs[1].Collection != "" {
					t.Fatalf("the events arrived as %+v %+v", h.evs[0], h.evs[1])
				}
			case 9:
				if len(h.evs) != 0 {
					t.Fatalf("a commit too big to carry came with its events")
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("node b heard nothing of %d", want)
		}
	}
	if err := a.Ready(); err != nil {
		t.Fatal(err)
	}
}

// TestLeaseIsExclusiveAndHandsOver: one holder at a time; a released
// lease passes at once, and a holder that stops renewing (a dead node)
// loses it after the TTL.
func TestLeaseIsExclusiveAndHandsOver(t *testing.T) {
	url, name := testCluster(t)
	ttl := 1500 * time.Millisecond
	a, b := connect(t, url, name, "a", ttl), connect(t, url, name, "b", ttl)
	ctx := context.Background()
	heldA, releaseA, err := a.Hold(ctx, "webhook.orders")
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithTimeout(ctx, ttl)
	if _, _, err := b.Hold(bctx, "webhook.orders"); err == nil {
		t.Fatal("node b took a lease node a holds")
	}
	bcancel()
	// A different name is independent.
	_, releaseOther, err := b.Hold(ctx, "automation.audit")
	if err != nil {
		t.Fatal(err)
	}
	releaseOther()

	releaseA()
	if heldA.Err() == nil {
		t.Fatal("a released lease's context is still live")
	}
	hctx, hcancel := context.WithTimeout(ctx, 2*ttl) // at once, or after the TTL on a loaded machine
	defer hcancel()
	_, releaseB, err := b.Hold(hctx, "webhook.orders")
	if err != nil {
		t.Fatalf("node b could not take a released lease: %v", err)
	}
	// Node b dies: it stops renewing (its connection closes) and its
	// lease expires; node a takes it within a few TTLs.
	b.nc.Close()
	_ = releaseB
	actx, acancel := context.WithTimeout(ctx, 5*ttl)
	defer acancel()
	start := time.Now()
	if _, release, err := a.Hold(actx, "webhook.orders"); err != nil {
		t.Fatalf("the dead node's lease never passed on: %v", err)
	} else {
		release()
	}
	t.Logf("handed over %v after the holder died (TTL %v)", time.Since(start).Round(time.Millisecond), ttl)
}

func TestLeaseKey(t *testing.T) {
	for in, want := range map[string]string{"webhook.orders": "webhook.orders", "fn_trigger.a b": "fn_5ftrigger.a_20b", "x/y": "x_2fy"} {
		if got := leaseKey(in); got != want {
			t.Errorf("leaseKey(%q) = %q, want %q", in, got, want)
		}
	}
}
