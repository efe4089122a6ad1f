// Package bus joins Mantle nodes that share one PostgreSQL database over
// NATS JetStream. It carries two things, and nothing that durability
// depends on (the PostgreSQL commit is what makes a write durable):
//
//   - Announcements. After each commit a node publishes the last sequence
//     it committed, with the commit's events when they are small enough,
//     on the JetStream stream MANTLE_LOG (subject mantle.log, deduplicated
//     by Nats-Msg-Id; the names follow Options.Cluster). Every node
//     listens and puts what it has not seen into its hub, in sequence
//     order, reading from the database what no announcement brought it
//     (see Follower), so its SSE, WebSocket and Kafka
//     consumers see writes made on any node within milliseconds. An
//     announcement is only a hint: a node also polls the log once a
//     second, so a lost one delays events, it never loses them.
//   - Leases. Work that must happen once per event cluster-wide (webhook
//     deliveries, event-triggered functions, automations) and once per
//     tick (schedules) runs on the node that holds its lease, a key in the
//     JetStream key-value bucket mantle_leases. The holder renews it; a
//     node that dies stops renewing, the key expires, and another node
//     takes the work over from the cursor saved in the database.
package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mantlehq/mantle/internal/eventlog"
)

// DefaultCluster names a cluster's stream, subject and bucket on the NATS
// server: MANTLE_LOG, mantle.log and mantle_leases. Clusters that share a
// NATS server need names of their own.
const DefaultCluster = "mantle"

// DefaultLeaseTTL is how long a lease outlives its holder's last renewal.
const DefaultLeaseTTL = 10 * time.Second

// Options configure Connect.
type Options struct {
	URL     string // nats://host:port, comma-separated for a cluster
	Node    string // this node's name, in leases and logs
	Cluster string // letters, digits, _ and -; default DefaultCluster
	// LeaseTTL is how long a dead holder keeps its work; the holder renews
	// three times per TTL. Default DefaultLeaseTTL.
	LeaseTTL time.Duration
	Log      *slog.Logger
}

// Bus is a node's connection to the others.
type Bus struct {
	o         Options
	subject   string
	nc        *nats.Conn
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	announce  chan []*eventlog.Event // commits to announce, in order
	announced chan struct{}          // closed when the announcer has stopped
}

// Connect connects to NATS and creates the stream and the lease bucket if
// they do not exist.
func Connect(ctx context.Context, o Options) (*Bus, error) {
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Cluster == "" {
		o.Cluster = DefaultCluster
	}
	nc, err := nats.Connect(o.URL, nats.Name("mantle "+o.Node), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.RetryOnFailedConnect(false))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", o.URL, err)
	}
	b := &Bus{o: o, nc: nc, subject: o.Cluster + ".log",
		announce: make(chan []*eventlog.Event, 4096), announced: make(chan struct{})}
	b.js, err = jetstream.New(nc, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
		o.Log.Debug("bus: an announcement was not stored (nodes still poll the log)", "err", err)
	}))
	if err == nil {
		_, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: strings.ToUpper(o.Cluster) + "_LOG", Subjects: []string{b.subject}, Storage: jetstream.MemoryStorage,
			MaxAge: time.Hour, MaxMsgs: 100_000, Duplicates: time.Minute,
			Description: "Mantle: sequences committed by each node (hints; the log is in PostgreSQL)",
		})
	}
	if err == nil {
		b.kv, err = b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: o.Cluster + "_leases", TTL: o.LeaseTTL, Storage: jetstream.FileStorage, History: 1,
			Description: "Mantle: which node runs each consumer and schedule",
		})
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("set up JetStream: %w", err)
	}
	go b.announcer()
	return b, nil
}

// maxCarried bounds the events an announcement carries: a bigger batch is
// announced by its last sequence alone, and the nodes read it from the
// database.
const maxCarried = 256 << 10

// announcement is what a node publishes after a commit: the last sequence
// and, up to maxCarried bytes, the events themselves, so that the other
// nodes need not read them back from the database.
type announcement struct {
	Last   int64       `json:"last"`
	Events []wireEvent `json:"events,omitempty"`
}

type wireEvent struct {
	Seq        int64           `json:"seq"`
	Type       string          `json:"type"`
	Collection string          `json:"collection,omitempty"`
	Subject    string          `json:"subject,omitempty"`
	Time       time.Time       `json:"time"`
	Actor      string          `json:"actor,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// Announce tells the other nodes that evs (the events of one commit, in
// order) are committed. It is called from the store's single writer, so it
// only queues them: a goroutine of the bus encodes and publishes them, in
// order, without waiting for JetStream's acknowledgement. It must not be
// called after Close.
func (b *Bus) Announce(evs []*eventlog.Event) {
	if len(evs) > 0 {
		b.announce <- evs
	}
}

func (b *Bus) announcer() {
	defer close(b.announced)
	for evs := range b.announce {
		b.publish(evs)
	}
}

func (b *Bus) publish(evs []*eventlog.Event) {
	a := announcement{Last: evs[len(evs)-1].Seq}
	size := 0
	for _, e := range evs {
		size += len(e.Data) + len(e.Subject) + 128
	}
	if size <= maxCarried {
		a.Events = make([]wireEvent, len(evs))
		for i, e := range evs {
			a.Events[i] = wireEvent{Seq: e.Seq, Type: e.Type, Collection: e.Collection, Subject: e.Subject, Time: e.Time, Actor: e.Actor, Data: e.Data}
		}
	}
	payload, err := json.Marshal(a)
	if err != nil {
		payload, _ = json.Marshal(announcement{Last: a.Last})
	}
	id := strconv.FormatInt(a.Last, 10)
	if _, err := b.js.PublishAsync(b.subject, payload, jetstream.WithMsgID(id)); err != nil {
		b.o.Log.Debug("bus: announce", "seq", a.Last, "err", err)
	}
}

// Follow calls fn with every announcement, by any node, until ctx ends:
// the last sequence committed and, when the announcement carries them,
// the events up to it. fn runs on NATS's delivery goroutine and must not
// block.
func (b *Bus) Follow(ctx context.Context, fn func(last int64, evs []*eventlog.Event)) error {
	sub, err := b.nc.Subscribe(b.subject, func(m *nats.Msg) {
		var a announcement
		if json.Unmarshal(m.Data, &a) != nil {
			return
		}
		var evs []*eventlog.Event
		for _, w := range a.Events {
			evs = append(evs, &eventlog.Event{Seq: w.Seq, Type: w.Type, Collection: w.Collection, Subject: w.Subject, Time: w.Time, Actor: w.Actor, Data: w.Data})
		}
		fn(a.Last, evs)
	})
	if err != nil {
		return fmt.Errorf("follow announcements: %w", err)
	}
	go func() {
		<-ctx.Done()
		sub.Unsubscribe()
	}()
	return nil
}

// Ready reports whether the connection to NATS is up.
func (b *Bus) Ready() error {
	if s := b.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("NATS connection is %s", strings.ToLower(s.String()))
	}
	return nil
}

// Node returns this node's name.
func (b *Bus) Node() string { return b.o.Node }

// Close flushes pending announcements and closes the connection.
func (b *Bus) Close() {
	close(b.announce)
	<-b.announced
	select {
	case <-b.js.PublishAsyncComplete():
	case <-time.After(time.Second):
	}
	b.nc.Close()
}

// Hold blocks until this node holds the lease called name, or ctx ends.
// The returned context ends when the lease is lost (a renewal failed: the
// key expired and another node may hold it now) or ctx ends; release
// stops renewing and gives the lease up at once, for a quick hand-over.
func (b *Bus) Hold(ctx context.Context, name string) (held context.Context, release func(), err error) {
	key := leaseKey(name)
	every := b.o.LeaseTTL / 3
	for {
		rev, err := b.kv.Create(ctx, key, []byte(b.o.Node))
		if err == nil {
			return b.keep(ctx, key, rev, every)
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			b.o.Log.Warn("bus: take a lease", "lease", name, "err", err)
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
}

// keep renews a lease until it is lost or released.
func (b *Bus) keep(ctx context.Context, key string, rev uint64, every time.Duration) (context.Context, func(), error) {
	held, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-held.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(held, every)
			next, err := b.kv.Update(rctx, key, []byte(b.o.Node), rev)
			rcancel()
			if err != nil {
				if held.Err() == nil {
					b.o.Log.Warn("bus: lost a lease", "lease", key, "err", err)
				}
				cancel()
				return
			}
			rev = next
		}
	}()
	release := func() {
		cancel()
		<-stopped
		// Give the key up if it is still ours. Its revision is read afresh:
		// a renewal that timed out on our side may have gone through.
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer dcancel()
		if e, err := b.kv.Get(dctx, key); err == nil && string(e.Value()) == b.o.Node {
			b.kv.Delete(dctx, key, jetstream.LastRevision(e.Revision()))
		}
	}
	return held, release, nil
}

// leaseKey makes a key-value key of a lease name: letters, digits and
// "-_=." are kept, anything else becomes "_" followed by its code.
func leaseKey(name string) string {
	var sb strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '=', r == '.':
			sb.WriteRune(r)
		default:
			fmt.Fprintf(&sb, "_%x", r)
		}
	}
	return sb.String()
}
