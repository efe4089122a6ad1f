package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"
)

// followSSE subscribes over SSE from after and records every event's
// sequence until ctx ends. connected is called once, when subscribed or
// failed. It speaks HTTP/1.1 on a raw connection, like the rest of the
// load generator: net/http's client (a read loop goroutine and three
// copies of every byte) cost as much CPU as the server's side of the
// stream, on the same two cores.
func (r *runner) followSSE(ctx context.Context, after string, connected func(), got *rtSub) error {
	c, done, err := dialUntil(ctx, r.o.URL, r.o.Token)
	if err != nil {
		connected()
		return fmt.Errorf("subscribe: %w", err)
	}
	defer done()
	c.w.WriteString("GET /api/events/stream?collections=" + r.o.Collection + "&after=" + after + " HTTP/1.1\r\nHost: " + c.host + "\r\n" + c.auth + "Accept: text/event-stream\r\n\r\n")
	err = c.w.Flush()
	var chunked bool
	if err == nil {
		chunked, err = c.streamHead()
	}
	connected()
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	var pending []byte
	for {
		var n int
		if chunked {
			line, err := c.r.ReadSlice('\n')
			if err != nil {
				return nil
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
			if err != nil || size == 0 {
				return nil
			}
			n = int(size)
		} else {
			n = max(c.r.Buffered(), 1)
		}
		start := len(pending)
		pending = append(pending, make([]byte, n)...)
		m, err := io.ReadFull(c.r, pending[start:])
		if err != nil && (chunked || m == 0) {
			return nil
		}
		pending = pending[:start+m]
		if chunked {
			c.r.ReadSlice('\n') // the chunk's CRLF
		}
		// Whole lines only; a line split across chunks waits for the rest.
		now := time.Now().UnixNano()
		end := bytes.LastIndexByte(pending, '\n') + 1
		for lines := pending[:end]; len(lines) > 0; {
			i := bytes.IndexByte(lines, '\n')
			if bytes.HasPrefix(lines, []byte("id: ")) {
				got.record(parseSeq(lines[4:]), now)
			}
			lines = lines[i+1:]
		}
		pending = pending[:copy(pending, pending[end:])]
	}
}

// dialUntil opens a connection that closes when ctx ends; done releases
// it.
func dialUntil(ctx context.Context, url, token string) (*conn, func(), error) {
	c, err := newConn(url, token)
	if err == nil {
		err = c.dial()
	}
	if err != nil {
		return nil, nil, err
	}
	nc := c.c // Close is safe from another goroutine; c.close is not
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	return c, func() { stop(); c.close() }, nil
}

// streamHead reads a streaming response's status line and headers and
// reports whether the body is chunked.
func (c *conn) streamHead() (chunked bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200")) {
		return false, fmt.Errorf("status %q", bytes.TrimSpace(line))
	}
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		if len(h) <= 2 {
			return chunked, nil
		}
		k, v, _ := bytes.Cut(h, []byte(":"))
		if bytes.EqualFold(k, []byte("Transfer-Encoding")) && bytes.EqualFold(bytes.TrimSpace(v), []byte("chunked")) {
			chunked = true
		}
	}
}
