package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	sse "github.com/tmaxmax/go-sse"
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

	var sent sync.Map // write number -> time sent
	prefix := "rt-" + r.run + "-"
	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	streamClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: r.o.Subscribers + 1}}
	type sub struct {
		mu   sync.Mutex
		lat  []time.Duration
		seen map[int64]bool
	}
	subs := make([]*sub, r.o.Subscribers+r.o.WSSubscribers)
	var ready, done sync.WaitGroup
	var connectErr atomic.Value
	// record notes every write a message carries (one for SSE and plain
	// WebSocket events, several for a batched "events" message).
	record := func(s *sub, data string) {
		now := time.Now()
		for {
			n, ok := writeNumber(data, prefix)
			if !ok {
				return
			}
			if i := strings.Index(data, `"title":"`+prefix); i >= 0 {
				data = data[i+1:]
			}
			// A record appears twice in an update's data (record, previous);
			// creates carry it once.
			t0, ok := sent.Load(n)
			if !ok {
				continue
			}
			s.mu.Lock()
			if !s.seen[n] {
				s.seen[n] = true
				s.lat = append(s.lat, now.Sub(t0.(time.Time)))
			}
			s.mu.Unlock()
		}
	}
	for i := range subs {
		s := &sub{seen: map[int64]bool{}}
		subs[i] = s
		follow := r.followSSE // the first Subscribers; the WebSocket ones after
		if i >= r.o.Subscribers {
			follow = r.followWS
		}
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			err := follow(streamCtx, streamClient, after, ready.Done, func(data string) { record(s, data) })
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
	var acked sync.Map
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
			due := int64(time.Since(start).Seconds() * float64(r.o.Rate))
			for ; n < due; n++ {
				writes.Add(1)
				go func(n int64) {
					defer writes.Done()
					body := []byte(fmt.Sprintf(`{"title":"%s%d","body":"%s","views":%d}`, prefix, n, r.body, n%10000))
					c := <-pool
					sent.Store(n, time.Now())
					status, _, err := c.do("POST", r.path, body)
					pool <- c
					if err != nil || status != 201 {
						nErr.Add(1)
						return
					}
					acked.Store(n, true)
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
			s.mu.Lock()
			c := len(s.seen)
			s.mu.Unlock()
			if c < want {
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
		for k := range s.seen {
			if _, ok := acked.Load(k); ok {
				res.Delivered++
			}
		}
		parts = append(parts, s.lat)
	}
	res.Latencies = merge(parts)
	return res, nil
}

// writeNumber finds "title":"<prefix>N" in an event's JSON without
// decoding all of it.
func writeNumber(data, prefix string) (int64, bool) {
	i := strings.Index(data, `"title":"`+prefix)
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(`"title":"`+prefix):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(rest[:j], 10, 64)
	return n, err == nil
}

// followSSE subscribes over SSE from after and hands every event's data to
// got until ctx ends. connected is called once, when subscribed or failed.
func (r *runner) followSSE(ctx context.Context, client *http.Client, after string, connected func(), got func(string)) error {
	url := strings.TrimSuffix(r.o.URL, "/") + "/api/events/stream?collections=" + r.o.Collection + "&after=" + after
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if r.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.o.Token)
	}
	resp, err := client.Do(req)
	connected()
	if err != nil || resp.StatusCode != 200 {
		return fmt.Errorf("subscribe: %v %v", err, resp)
	}
	defer resp.Body.Close()
	for ev, err := range sse.Read(resp.Body, nil) {
		if err != nil {
			return nil
		}
		got(ev.Data)
	}
	return nil
}

// followWS does the same over the WebSocket API, in batch mode.
func (r *runner) followWS(ctx context.Context, _ *http.Client, after string, connected func(), got func(string)) error {
	ws := strings.Replace(strings.TrimSuffix(r.o.URL, "/"), "http", "ws", 1) + "/api/realtime/ws"
	if r.o.Token != "" {
		ws += "?token=" + r.o.Token
	}
	c, _, err := websocket.Dial(ctx, ws, nil)
	if err != nil {
		connected()
		return fmt.Errorf("websocket: %v", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	err = c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","id":"b","collections":["`+r.o.Collection+`"],"after":`+after+`,"batch":true}`))
	connected()
	if err != nil {
		return fmt.Errorf("websocket subscribe: %v", err)
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return nil
		}
		got(string(data))
	}
}
