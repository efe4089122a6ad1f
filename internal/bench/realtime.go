package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// realtime opens Subscribers SSE streams, writes Rate records per second
// for Duration, and measures, for every subscriber and every acknowledged
// write, the time from sending the write to receiving its event.
func (r *runner) realtime(ctx context.Context) (*Result, error) {
	// The write's Mantle-Seq header tells where the stream must start.
	req, _ := http.NewRequestWithContext(ctx, "POST", r.base, bytes.NewReader(r.newRecord()))
	req.Header.Set("Content-Type", "application/json")
	if r.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.o.Token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	after := resp.Header.Get("Mantle-Seq")
	if resp.StatusCode != 201 || after == "" {
		return nil, fmt.Errorf("start: status %d, Mantle-Seq %q", resp.StatusCode, after)
	}

	// Writes are numbered 1..max. A subscriber notes when each sequence
	// arrived in a slice of its own (0: not seen), so recording an event
	// takes no lock, no allocation and no search through its JSON: at a
	// million deliveries a second the load generator shares the two cores
	// with the server. Latencies are worked out at the end, from the
	// sequence each write was acknowledged with.
	first, err := strconv.ParseInt(after, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("start: Mantle-Seq %q", after)
	}
	max := int64(float64(r.o.Rate)*r.o.Duration.Seconds()) + int64(r.o.Rate) + 1
	sent := make([]int64, max+1)  // write number -> unix nanoseconds sent
	seqOf := make([]int64, max+1) // write number -> its event's seq, once acknowledged
	// Sequences of other writers' events may interleave with ours; room
	// for as many again.
	span := 2 * max
	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	subs := make([]*rtSub, r.o.Subscribers+r.o.WSSubscribers)
	var ready, done sync.WaitGroup
	var connectErr atomic.Value
	for i := range subs {
		s := &rtSub{first: first, got: make([]int64, span)}
		subs[i] = s
		follow := r.followSSE // the first Subscribers; the WebSocket ones after
		if i >= r.o.Subscribers {
			follow = r.followWS
		}
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			err := follow(streamCtx, after, ready.Done, s)
			if err != nil {
				connectErr.Store(err)
			}
		}()
	}
	ready.Wait()
	if err, _ := connectErr.Load().(error); err != nil {
		return nil, err
	}

	// Write at a fixed rate; each write runs in its own goroutine so a
	// slow answer does not lower the rate.
	var nAcked, nErr atomic.Int64
	var writes sync.WaitGroup
	// Writes go over a pool of lean keep-alive connections.
	pool := make(chan *conn, 16)
	for i := 0; i < cap(pool); i++ {
		c, err := newConn(r.o.URL, r.o.Token)
		if err != nil {
			return nil, err
		}
		defer c.close()
		pool <- c
	}
	tick := time.NewTicker(time.Second / time.Duration(r.o.Rate))
	deadline := time.After(r.o.Duration)
	start := time.Now()
	var n int64
loop:
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			break loop
		case <-tick.C:
			// Send what the rate calls for by now, so a late tick does not
			// lower the rate.
			due := min(int64(time.Since(start).Seconds()*float64(r.o.Rate)), max)
			for ; n < due; n++ {
				writes.Add(1)
				go func(n int64) {
					defer writes.Done()
					body := []byte(fmt.Sprintf(`{"title":"rt-%s-%d","body":"%s","views":%d}`, r.run, n, r.body, n%10000))
					c := <-pool
					sent[n] = time.Now().UnixNano()
					status, _, err := c.do("POST", r.path, body)
					seq := c.seq
					pool <- c
					if err != nil || status != 201 || seq <= first || seq-first >= span {
						nErr.Add(1)
						return
					}
					seqOf[n] = seq
					nAcked.Add(1)
				}(n + 1)
			}
		}
	}
	tick.Stop()
	writes.Wait()
	elapsed := time.Since(start)

	// Wait for delivery: every subscriber should see every acknowledged
	// write. Give up 5s after the last write.
	want := int(nAcked.Load())
	giveUp := time.Now().Add(5 * time.Second)
	for time.Now().Before(giveUp) {
		complete := true
		for _, s := range subs {
			if int(s.seen.Load()) < want { // seen may count other writers' events: a bound, not proof
				complete = false
				break
			}
		}
		if complete {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the counters of a running load, not synchronising a test
	}
	stopStreams()
	done.Wait()

	res := &Result{Requests: int(n), Errors: int(nErr.Load()), Duration: elapsed, Subscribers: len(subs), Expected: want * len(subs)}
	var parts [][]time.Duration
	for _, s := range subs {
		var l []time.Duration
		for n, seq := range seqOf {
			if seq == 0 {
				continue
			}
			if t := s.got[seq-first]; t != 0 {
				res.Delivered++
				l = append(l, time.Duration(t-sent[n]))
			}
		}
		parts = append(parts, l)
	}
	res.Latencies = merge(parts)
	return res, nil
}

// rtSub is one subscriber's record of what it received.
type rtSub struct {
	first int64   // the sequence the subscription started after
	got   []int64 // per sequence after first: unix nanoseconds received, 0 if not
	seen  atomic.Int64
}

// record notes when sequence seq arrived.
func (s *rtSub) record(seq, now int64) {
	i := seq - s.first
	if i <= 0 || i >= int64(len(s.got)) || s.got[i] != 0 {
		return
	}
	s.got[i] = now
	s.seen.Add(1)
}

// parseSeq reads the decimal number at the start of b.
func parseSeq(b []byte) int64 {
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}
