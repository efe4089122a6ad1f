package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
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
	sent := make([]int64, max+1)  // write number -> unix nanoseconds it was due
	seqOf := make([]int64, max+1) // write number -> its event's seq, once acknowledged
	ackAt := make([]int64, max+1) // write number -> unix nanoseconds acknowledged
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

	// Write at a fixed rate, in this process or, when the options name a
	// writer command, in a process of its own.
	var nAcked, nErr atomic.Int64
	report := func(w Written) {
		if !w.OK || w.N <= 0 || w.N > max || w.Seq <= first || w.Seq-first >= span {
			nErr.Add(1)
			return
		}
		sent[w.N], seqOf[w.N], ackAt[w.N] = w.Due, w.Seq, w.Ack
		nAcked.Add(1)
	}
	var n int64
	var elapsed time.Duration
	wo := r.o
	if wo.WriteURL != "" {
		wo.URL = wo.WriteURL
	}
	if len(r.o.WriterCommand) > 0 {
		n, elapsed, err = r.writeInChild(ctx, wo, report)
	} else {
		n, elapsed, err = WriteAtRate(ctx, wo, r.run, report)
	}
	if err != nil {
		return nil, err
	}

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
	for n, seq := range seqOf {
		if seq != 0 {
			res.WriteLatencies = append(res.WriteLatencies, time.Duration(ackAt[n]-sent[n]))
		}
	}
	slices.Sort(res.WriteLatencies)
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

// Written is the outcome of one write of the realtime workload.
type Written struct {
	N        int64 // the write's number, 1..
	Seq      int64 // its event's sequence (Mantle-Seq)
	Due, Ack int64 // unix nanoseconds: when it was due, when it was answered
	OK       bool  // answered 201 with a sequence
}

// WriteAtRate creates o.Rate records per second for o.Duration (titles
// rt-<run>-<n>) and reports every write. Each write runs in its own
// goroutine, over a pool of lean keep-alive connections large enough for
// the rate to hold while the server is busy with the fan-out. Its latency
// counts from when it was due, not from when a connection was free, so a
// server that falls behind the rate shows it (no coordinated omission). It
// returns how many writes it made and how long they took.
func WriteAtRate(ctx context.Context, o Options, run string, report func(Written)) (int64, time.Duration, error) {
	o.defaults()
	u, err := url.Parse(strings.TrimRight(o.URL, "/") + "/api/collections/" + o.Collection + "/records")
	if err != nil {
		return 0, 0, err
	}
	body := strings.Repeat("x", o.BodyBytes)
	max := int64(float64(o.Rate)*o.Duration.Seconds()) + int64(o.Rate) + 1
	pool := make(chan *conn, 64)
	for i := 0; i < cap(pool); i++ {
		c, err := newConn(o.URL, o.Token)
		if err != nil {
			return 0, 0, err
		}
		defer c.close()
		pool <- c
	}
	var mu sync.Mutex // report is called from many goroutines
	var writes sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(o.Rate))
	defer tick.Stop()
	deadline := time.After(o.Duration)
	start := time.Now()
	var n int64
loop:
	for {
		select {
		case <-ctx.Done():
			writes.Wait()
			return n, time.Since(start), ctx.Err()
		case <-deadline:
			break loop
		case <-tick.C:
			// Send what the rate calls for by now, so a late tick does not
			// lower the rate.
			due := min(int64(time.Since(start).Seconds()*float64(o.Rate)), max)
			for ; n < due; n++ {
				writes.Add(1)
				go func(n int64) {
					defer writes.Done()
					w := Written{N: n, Due: start.UnixNano() + n*int64(time.Second)/int64(o.Rate)}
					payload := []byte(fmt.Sprintf(`{"title":"rt-%s-%d","body":"%s","views":%d}`, run, n, body, n%10000))
					c := <-pool
					status, _, err := c.do("POST", u.Path, payload)
					w.Seq = c.seq
					pool <- c
					w.Ack = time.Now().UnixNano()
					w.OK = err == nil && status == 201 && w.Seq > 0
					mu.Lock()
					report(w)
					mu.Unlock()
				}(n + 1)
			}
		}
	}
	writes.Wait()
	return n, time.Since(start), nil
}

// writeInChild runs the writes in a process of its own (o.WriterCommand),
// which prints one line per write: n seq due ack ok. On two cores the
// load generator's thousand subscriber goroutines would otherwise delay
// the writes themselves: Go runs runnable goroutines in turn, and the
// writes would wait behind every subscriber's read.
func (r *runner) writeInChild(ctx context.Context, wo Options, report func(Written)) (int64, time.Duration, error) {
	args := append(append([]string(nil), r.o.WriterCommand[1:]...),
		"--url", wo.URL, "--token", r.o.Token, "--collection", r.o.Collection, "--rate", strconv.Itoa(r.o.Rate),
		"--duration", r.o.Duration.String(), "--body", strconv.Itoa(r.o.BodyBytes), "--run", r.run)
	cmd := exec.CommandContext(ctx, r.o.WriterCommand[0], args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	cmd.Stderr = r.o.Log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	var n int64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var w Written
		var ok int
		if _, err := fmt.Sscan(sc.Text(), &w.N, &w.Seq, &w.Due, &w.Ack, &ok); err != nil {
			continue
		}
		w.OK = ok == 1
		report(w)
		n++
	}
	if err := cmd.Wait(); err != nil {
		return n, time.Since(start), fmt.Errorf("realtime writer: %w", err)
	}
	return n, time.Since(start), nil
}

// PrintWritten writes one line for WriteAtRate's report, as writeInChild
// reads it.
func PrintWritten(w io.Writer, x Written) {
	ok := 0
	if x.OK {
		ok = 1
	}
	fmt.Fprintf(w, "%d %d %d %d %d\n", x.N, x.Seq, x.Due, x.Ack, ok)
}
