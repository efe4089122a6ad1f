package kafka

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"time"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/feed"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka error codes used here.
const (
	errNone              = 0
	errOffsetOutOfRange  = 1
	errUnknownTopic      = 3
	errNotLeader         = 6
	errUnknownMember     = 25
	errRebalance         = 27
	errIllegalGeneration = 22
	errCoordinatorLoad   = 14
)

// topics lists the topics: the whole log and each collection.
func (s *Server) topics() []string {
	out := []string{LogTopic}
	for _, c := range s.o.Engine.Schema().Collections {
		out = append(out, c.Name)
	}
	return out
}

func (s *Server) topicExists(t string) bool {
	if t == LogTopic {
		return true
	}
	_, err := s.o.Engine.Collection(t)
	return err == nil
}

func (c *conn) metadata(r *kmsg.MetadataRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	cluster := "mantle"
	resp.ClusterID = &cluster
	resp.ControllerID = 0
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 0, Host: c.s.host, Port: c.s.port}}
	var names []string
	if r.Topics == nil {
		names = c.s.topics()
	} else {
		for _, t := range r.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
	}
	for _, name := range names {
		n := name
		t := kmsg.MetadataResponseTopic{Topic: &n}
		if !c.s.topicExists(name) {
			t.ErrorCode = errUnknownTopic
		} else {
			t.Partitions = []kmsg.MetadataResponseTopicPartition{{Partition: 0, Leader: 0, Replicas: []int32{0}, ISR: []int32{0}}}
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// highWatermark is the next offset to be written: offset = seq - 1, so
// it is the last sequence.
func (c *conn) highWatermark(ctx context.Context) int64 {
	n, err := c.s.o.Engine.LastSeq(ctx)
	if err != nil {
		return 0
	}
	return n
}

func (c *conn) listOffsets(ctx context.Context, r *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	hw := c.highWatermark(ctx)
	for _, t := range r.Topics {
		rt := kmsg.ListOffsetsResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rp := kmsg.ListOffsetsResponseTopicPartition{Partition: p.Partition, Timestamp: -1}
			switch {
			case !c.s.topicExists(t.Topic):
				rp.ErrorCode = errUnknownTopic
			case p.Partition != 0:
				rp.ErrorCode = errUnknownTopic
			case p.Timestamp == -1: // latest
				rp.Offset = hw
			case p.Timestamp == -2: // earliest
				rp.Offset = 0
			default: // the first offset at or after a time
				rp.Offset, rp.Timestamp = c.offsetForTime(ctx, p.Timestamp, hw)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// offsetForTime finds the first event at or after ms (Unix
// milliseconds) by binary search over sequences: event times follow the
// sequence order.
func (c *conn) offsetForTime(ctx context.Context, ms int64, hw int64) (int64, int64) {
	at := func(seq int64) (int64, bool) {
		evs, err := c.s.o.Engine.StoreEvents(ctx, store.EventFilter{After: seq - 1, Limit: 1})
		if err != nil || len(evs) == 0 {
			return 0, false
		}
		return evs[0].Time.UnixMilli(), true
	}
	lo, hi := int64(1), hw+1 // find the first seq in [lo, hi) with time >= ms
	for lo < hi {
		mid := lo + (hi-lo)/2
		if t, ok := at(mid); ok && t >= ms {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo > hw {
		return hw, -1
	}
	t, _ := at(lo)
	return lo - 1, t
}

// fetch answers from the log. With nothing new at any requested offset it
// waits (long polling) up to MaxWaitMillis for a commit.
func (c *conn) fetch(ctx context.Context, r *kmsg.FetchRequest) kmsg.Response {
	wait := time.Duration(min(max(r.MaxWaitMillis, 0), 30_000)) * time.Millisecond
	deadline := time.Now().Add(wait)
	for {
		_, _, wake := c.s.o.Hub.Since(1<<62, 0) // the wake channel of the next publish
		resp, any := c.fetchOnce(ctx, r)
		if any || wait == 0 || time.Now().After(deadline) {
			return resp
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ctx.Done():
			t.Stop()
			return resp
		case <-wake:
			t.Stop()
		case <-t.C:
			return resp
		}
	}
}

// fetchOnce builds the answer now; any reports whether some partition had
// events past its offset (matching or not).
func (c *conn) fetchOnce(ctx context.Context, r *kmsg.FetchRequest) (*kmsg.FetchResponse, bool) {
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	hw := c.highWatermark(ctx)
	budget := int(r.MaxBytes)
	if budget <= 0 {
		budget = 50 << 20
	}
	any := false
	for _, t := range r.Topics {
		rt := kmsg.FetchResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rp := kmsg.FetchResponseTopicPartition{Partition: p.Partition, HighWatermark: hw, LastStableOffset: hw,
				LogStartOffset: 0, PreferredReadReplica: -1,
				RecordBatches: []byte{}} // empty, not null: librdkafka refuses a null record set
			switch {
			case !c.s.topicExists(t.Topic) || p.Partition != 0:
				rp.ErrorCode = errUnknownTopic
			case p.FetchOffset < 0 || p.FetchOffset > hw:
				rp.ErrorCode = errOffsetOutOfRange
			case p.FetchOffset < hw && budget > 0:
				limit := min(int(p.PartitionMaxBytes), budget)
				if limit <= 0 {
					limit = 1 << 20
				}
				if b := c.batch(ctx, t.Topic, p.FetchOffset, hw, limit); b != nil {
					rp.RecordBatches = b
				}
				budget -= len(rp.RecordBatches)
				any = true
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, any
}

// batch encodes the events from offset on (up to hw and about limit
// bytes) as one record batch. Events of other collections or that the
// caller may not view are left out, but the batch still spans their
// offsets, so the consumer moves past them (as after compaction).
func (c *conn) batch(ctx context.Context, topic string, offset, hw int64, limit int) []byte {
	var colls []string
	if topic != LogTopic {
		colls = []string{topic}
	}
	m, err := feed.NewMatcher(c.s.o.Engine, c.id, feed.Spec{Collections: colls})
	if err != nil {
		return nil
	}
	cur := feed.NewCursor(c.s.o.Hub, c.s.o.Engine, offset)
	var recs []byte
	var n int32
	var first, last time.Time
	lastOff := offset
	for lastOff < hw && len(recs) < limit {
		evs, _, err := cur.Next(ctx, 512)
		if err != nil || len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			off := ev.Seq - 1
			if off >= hw || (len(recs) >= limit && n > 0) {
				break
			}
			lastOff = off + 1
			if !m.Match(ev) {
				continue
			}
			if n == 0 {
				first = ev.Time
			}
			last = ev.Time
			recs = appendRecord(recs, int32(off-offset), ev.Time.Sub(first).Milliseconds(), ev)
			n++
		}
	}
	if lastOff == offset {
		return nil
	}
	return appendBatch(nil, offset, int32(lastOff-1-offset), first, last, n, recs)
}

// appendRecord appends one record (format v2): the key is the record id,
// the value the event's data, the CloudEvents attributes ce_ headers.
func appendRecord(dst []byte, offsetDelta int32, tsDelta int64, ev *eventlog.Event) []byte {
	var body []byte
	body = append(body, 0) // attributes
	body = binary.AppendVarint(body, tsDelta)
	body = binary.AppendVarint(body, int64(offsetDelta))
	if ev.Subject == "" {
		body = binary.AppendVarint(body, -1)
	} else {
		body = binary.AppendVarint(body, int64(len(ev.Subject)))
		body = append(body, ev.Subject...)
	}
	body = binary.AppendVarint(body, int64(len(ev.Data)))
	body = append(body, ev.Data...)
	hdrs := ceHeaders(ev)
	body = binary.AppendVarint(body, int64(len(hdrs)/2))
	for _, h := range hdrs {
		body = binary.AppendVarint(body, int64(len(h)))
		body = append(body, h...)
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

// ceHeaders are the CloudEvents Kafka binding's binary-mode headers, as
// name, value pairs.
func ceHeaders(ev *eventlog.Event) []string {
	h := []string{
		"ce_specversion", "1.0",
		"ce_id", itoa(ev.Seq),
		"ce_source", ev.Source(),
		"ce_type", ev.Type,
		"ce_time", ev.Time.UTC().Format("2006-01-02T15:04:05.000000000Z"),
		"ce_seq", itoa(ev.Seq),
		"content-type", "application/json",
	}
	if ev.Subject != "" {
		h = append(h, "ce_subject", ev.Subject)
	}
	if ev.Actor != "" {
		h = append(h, "ce_actor", ev.Actor)
	}
	return h
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendBatch appends a record batch (magic 2) holding n encoded records.
func appendBatch(dst []byte, base int64, lastDelta int32, first, last time.Time, n int32, recs []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(base))
	dst = binary.BigEndian.AppendUint32(dst, 0) // length, below
	dst = binary.BigEndian.AppendUint32(dst, 0) // partition leader epoch
	dst = append(dst, 2)                        // magic
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc, below
	crcFrom := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, 0) // attributes: no compression, create time
	dst = binary.BigEndian.AppendUint32(dst, uint32(lastDelta))
	ft, lt := first.UnixMilli(), last.UnixMilli()
	if n == 0 {
		ft, lt = -1, -1
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(ft))
	dst = binary.BigEndian.AppendUint64(dst, uint64(lt))
	dst = binary.BigEndian.AppendUint64(dst, ^uint64(0)) // producer id -1
	dst = binary.BigEndian.AppendUint16(dst, ^uint16(0)) // producer epoch -1
	dst = binary.BigEndian.AppendUint32(dst, ^uint32(0)) // base sequence -1
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, recs...)
	binary.BigEndian.PutUint32(dst[start+8:], uint32(len(dst)-start-12))
	binary.BigEndian.PutUint32(dst[start+17:], crc32.Checksum(dst[crcFrom:], castagnoli))
	return dst
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
