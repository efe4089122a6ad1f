package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
)

// fanout is the baseline's realtime side: the least a server must do to
// deliver every write to a thousand subscribers, measured in the same run
// as Mantle (the loopback ceiling of the realtime workload). A create
// takes the next sequence and renders the same CloudEvent Mantle would
// (same fields, same size) into an eventlog.Hub: Mantle's own ring and
// wake policy, whose coalescing is what makes a thousand subscribers
// possible at all. Each subscriber is a goroutine on a hijacked connection
// that writes everything new in one writev per wake, as Mantle does. What
// the baseline leaves out is everything else Mantle does for a write and
// a delivery: validation, the rule, the store and its fsync, the
// subscription's matching, and its net/http handler stack.
type fanout struct {
	mu  sync.Mutex // sequence order for Publish
	seq int64
	hub *eventlog.Hub
}

func newFanout() *fanout { return &fanout{hub: eventlog.NewHub(0, 0)} }

// create answers a create with the record and publishes its event.
func (f *fanout) create(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	body = bytes.TrimSpace(body)
	if err != nil || len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		http.Error(w, "a JSON object, please", http.StatusBadRequest)
		return
	}
	now := time.Now().UTC()
	id, ts := mantle.NewID(), now.Format(time.RFC3339Nano)
	rec := make([]byte, 0, len(body)+128)
	rec = append(rec, `{"id":"`+id+`","createdAt":"`+ts+`","updatedAt":"`+ts+`","version":1`...)
	if fields := bytes.TrimSpace(body[1 : len(body)-1]); len(fields) > 0 {
		rec = append(append(rec, ','), fields...)
	}
	rec = append(rec, '}')
	data := append(append([]byte(`{"record":`), rec...), '}')
	ev := &eventlog.Event{Type: eventlog.RecordCreated, Collection: r.PathValue("c"), Subject: id, Time: now, Actor: "admin", Data: data}
	f.mu.Lock()
	f.seq++
	ev.Seq = f.seq
	f.hub.Publish([]*eventlog.Event{ev})
	f.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("ETag", `"1"`)
	h.Set("Mantle-Seq", strconv.FormatInt(ev.Seq, 10))
	w.WriteHeader(http.StatusCreated)
	w.Write(append(rec, '\n'))
}

// stream follows the hub from after and hands every step's new events to
// send, until ctx ends or the ring no longer holds what is next.
func (f *fanout) stream(ctx context.Context, after int64, send func([]*eventlog.Event) error) {
	shard := f.hub.Shard()
	var evs []*eventlog.Event
	for {
		var ok bool
		var wait <-chan struct{}
		evs, ok, wait = f.hub.SinceInto(shard, after, 512, evs)
		if !ok {
			return
		}
		if len(evs) > 0 {
			if send(evs) != nil {
				return
			}
			after = evs[len(evs)-1].Seq
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		}
	}
}

// hijack takes the connection over and returns a context that ends when
// the client closes it.
func hijack(w http.ResponseWriter) (net.Conn, *bufio.Reader, context.Context, context.CancelFunc, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return conn, brw.Reader, ctx, cancel, nil
}

// closeOnEOF reads (and drops) what the client sends until it goes.
func closeOnEOF(r io.Reader, cancel context.CancelFunc) {
	io.Copy(io.Discard, r)
	cancel()
}

// sse serves /api/events/stream: chunked Server-Sent Events, each step's
// events in one chunk.
func (f *fanout) sse(w http.ResponseWriter, r *http.Request) {
	after, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if err != nil {
		after = f.hub.Last()
	}
	conn, br, ctx, cancel, err := hijack(w)
	if err != nil {
		return
	}
	defer cancel()
	defer conn.Close()
	go closeOnEOF(br, cancel)
	if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\r\n"); err != nil {
		return
	}
	var iov [][]byte
	var head []byte
	f.stream(ctx, after, func(evs []*eventlog.Event) error {
		n := 0
		iov = append(iov[:0], nil)
		for _, ev := range evs {
			iov = append(iov, ev.SSE())
			n += len(ev.SSE())
		}
		head = append(strconv.AppendInt(head[:0], int64(n), 16), crlf...)
		iov[0] = head
		iov = append(iov, crlf)
		bufs := net.Buffers(iov)
		_, err := bufs.WriteTo(conn)
		return err
	})
}

var crlf = []byte("\r\n")

// ws serves /api/realtime/ws for one subscription in batch mode: the
// handshake, the client's subscribe message (its id and after are used,
// the rest is taken as asked), then one "events" message per step.
func (f *fanout) ws(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" {
		http.Error(w, "a WebSocket upgrade, please", http.StatusBadRequest)
		return
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, br, ctx, cancel, err := hijack(w)
	if err != nil {
		return
	}
	defer cancel()
	defer conn.Close()
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
		base64.StdEncoding.EncodeToString(sum[:])+"\r\n\r\n"); err != nil {
		return
	}
	var msg []byte
	if _, msg, err = readWSFrame(br, &msg, true); err != nil {
		return
	}
	go closeOnEOF(br, cancel)
	id := jsonString(msg, `"id":"`)
	after, err := strconv.ParseInt(jsonString(msg, `"after":`), 10, 64)
	if err != nil {
		after = f.hub.Last()
	}
	start := []byte(`{"type":"events","id":` + strconv.Quote(id) + `,"events":[`)
	var iov [][]byte
	var small []byte // the pieces between the events' JSON
	var marks []int
	f.stream(ctx, after, func(evs []*eventlog.Event) error {
		small, marks = append(small[:0], start...), marks[:0]
		n := 0
		for i, ev := range evs {
			if i > 0 {
				small = append(small, ',')
			}
			small = append(small, `{"seq":`...)
			small = strconv.AppendInt(small, ev.Seq, 10)
			small = append(small, `,"event":`...)
			marks = append(marks, len(small))
			small = append(small, '}')
			n += len(ev.JSON())
		}
		small = append(small, ']', '}')
		n += len(small)
		head := []byte{0x81, 127, 0, 0, 0, 0, 0, 0, 0, 0} // FIN, text, 64-bit length
		binary.BigEndian.PutUint64(head[2:], uint64(n))
		iov = append(iov[:0], head)
		from := 0
		for i, ev := range evs {
			iov = append(iov, small[from:marks[i]], ev.JSON())
			from = marks[i]
		}
		iov = append(iov, small[from:])
		bufs := net.Buffers(iov)
		_, err := bufs.WriteTo(conn)
		return err
	})
}

// jsonString returns what follows key in msg up to the next quote, comma
// or brace: enough to read the bench's own subscribe message.
func jsonString(msg []byte, key string) string {
	i := bytes.Index(msg, []byte(key))
	if i < 0 {
		return ""
	}
	rest := msg[i+len(key):]
	if j := bytes.IndexAny(rest, `",}`); j >= 0 {
		rest = rest[:j]
	}
	return string(rest)
}
