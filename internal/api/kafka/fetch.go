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
		wake := c.s.o.Hub.Wake() // taken before reading, so no publish is missed
		resp, found := c.fetchOnce(ctx, r)
		if found || wait == 0 || time.Now().After(deadline) {
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

// fetchOnce builds the answer now; found reports whether some partition
// had events past its offset (matching or not).
func (c *conn) fetchOnce(ctx context.Context, r *kmsg.FetchRequest) (*kmsg.FetchResponse, bool) {
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	hw := c.highWatermark(ctx)
	budget := int(r.MaxBytes)
	if budget <= 0 {
		budget = 50 << 20
	}
	found := false
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
				found = true
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, found
}

// batchHeader is the size of a record batch's header (magic 2).
const batchHeader = 61

// batch encodes the events from offset on (up to hw and about limit
// bytes) as one record batch. Events of other collections or that the
// caller may not view are left out, but the batch still spans their
// offsets, so the consumer moves past them (as after compaction). The
// batch is built in place in one buffer: records after a reserved header.
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
	buf := make([]byte, batchHeader, batchHeader+min(limit, 8<<20)+64<<10)
	scratch := make([]byte, 0, 4096)
	var n int32
	var first, last time.Time
	lastOff := offset
	for lastOff < hw && len(buf)-batchHeader < limit {
		evs, _, err := cur.Next(ctx, 4096)
		if err != nil || len(evs) == 0 {
			break
		}
		select {
		case <-c.revoked: // in place before any later event was published
			return nil
		default:
		}
		for _, ev := range evs {
			off := ev.Seq - 1
			if off >= hw || (len(buf)-batchHeader >= limit && n > 0) {
				break
			}
			lastOff = off + 1
			if !m.Match(ev) {
				continue
			}
			ev = m.View(ev)
			if n == 0 {
				first = ev.Time
			}
			last = ev.Time
			scratch = recordBody(scratch[:0], int32(off-offset), ev.Time.Sub(first).Milliseconds(), ev)
			buf = binary.AppendVarint(buf, int64(len(scratch)))
			buf = append(buf, scratch...)
			n++
		}
	}
	if lastOff == offset {
		return nil
	}
	batchHead(buf, offset, int32(lastOff-1-offset), first, last, n)
	return buf
}

// recordBody appends one record's body (format v2, after its length):
// the key is the record id, the value the event's data, the CloudEvents
// attributes ce_ headers (the binding's binary mode).
func recordBody(dst []byte, offsetDelta int32, tsDelta int64, ev *eventlog.Event) []byte {
	dst = append(dst, 0) // attributes
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, int64(offsetDelta))
	if ev.Subject == "" {
		dst = binary.AppendVarint(dst, -1)
	} else {
		dst = appendBytes(dst, ev.Subject)
	}
	dst = binary.AppendVarint(dst, int64(len(ev.Data)))
	dst = append(dst, ev.Data...)
	headers := 7
	if ev.Subject != "" {
		headers++
	}
	if ev.Actor != "" {
		headers++
	}
	dst = binary.AppendVarint(dst, int64(headers))
	var num [20]byte
	seq := strconv.AppendInt(num[:0], ev.Seq, 10)
	dst = appendHeader(dst, "ce_specversion", "1.0")
	dst = appendHeaderBytes(dst, "ce_id", seq)
	dst = appendHeader(dst, "ce_source", ev.Source())
	dst = appendHeader(dst, "ce_type", ev.Type)
	var tb [40]byte
	dst = appendHeaderBytes(dst, "ce_time", ev.Time.UTC().AppendFormat(tb[:0], "2006-01-02T15:04:05.000000000Z"))
	dst = appendHeaderBytes(dst, "ce_seq", seq)
	dst = appendHeader(dst, "content-type", "application/json")
	if ev.Subject != "" {
		dst = appendHeader(dst, "ce_subject", ev.Subject)
	}
	if ev.Actor != "" {
		dst = appendHeader(dst, "ce_actor", ev.Actor)
	}
	return dst
}

func appendBytes(dst []byte, s string) []byte {
	dst = binary.AppendVarint(dst, int64(len(s)))
	return append(dst, s...)
}

func appendHeader(dst []byte, k, v string) []byte {
	return appendBytes(appendBytes(dst, k), v)
}

func appendHeaderBytes(dst []byte, k string, v []byte) []byte {
	dst = appendBytes(dst, k)
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHead fills the reserved header of a record batch (magic 2) whose
// n records follow it in buf.
func batchHead(buf []byte, base int64, lastDelta int32, first, last time.Time, n int32) {
	h := buf[:0]
	h = binary.BigEndian.AppendUint64(h, uint64(base))
	h = binary.BigEndian.AppendUint32(h, uint32(len(buf)-12)) // the length after this field
	h = binary.BigEndian.AppendUint32(h, 0)                   // partition leader epoch
	h = append(h, 2)                                          // magic
	h = binary.BigEndian.AppendUint32(h, 0)                   // crc, below
	h = binary.BigEndian.AppendUint16(h, 0)                   // attributes: no compression, create time
	h = binary.BigEndian.AppendUint32(h, uint32(lastDelta))
	ft, lt := first.UnixMilli(), last.UnixMilli()
	if n == 0 {
		ft, lt = -1, -1
	}
	h = binary.BigEndian.AppendUint64(h, uint64(ft))
	h = binary.BigEndian.AppendUint64(h, uint64(lt))
	h = binary.BigEndian.AppendUint64(h, ^uint64(0)) // producer id -1
	h = binary.BigEndian.AppendUint16(h, ^uint16(0)) // producer epoch -1
	h = binary.BigEndian.AppendUint32(h, ^uint32(0)) // base sequence -1
	binary.BigEndian.AppendUint32(h, uint32(n))
	binary.BigEndian.PutUint32(buf[17:], crc32.Checksum(buf[21:], castagnoli))
}
