package rest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// sseWriteTimeout bounds one write to a stream's client: a client that
// takes no bytes for this long is gone or stuck, and its stream ends (it
// resumes from Last-Event-ID when it comes back).
const sseWriteTimeout = 30 * time.Second

// sseOut is where a stream's bytes go: each send's frames are flushed to
// the client at once.
type sseOut interface {
	send(frames ...[]byte) error
	end()
}

// openSSE answers the request with the stream's status and headers and
// returns its writer. Over HTTP/1.1 it takes the connection from net/http
// and writes each send as one chunk in one writev: net/http's response
// writer costs up to three write syscalls per flush (the chunk header, the
// data past its 4 KiB buffer, the rest), and with a thousand subscribers
// those syscalls are most of what fan-out costs. Elsewhere (HTTP/2, test
// recorders) it uses the response writer. ctx ends when the client goes.
func openSSE(w http.ResponseWriter, r *http.Request) (sseOut, context.Context, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	if r.ProtoAtLeast(1, 1) && r.ProtoMajor == 1 {
		if conn, brw, err := http.NewResponseController(w).Hijack(); err == nil {
			return hijackedSSE(r.Context(), h, conn, brw, sseWriteTimeout)
		}
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return nil, nil, errNoFlush
	}
	rc := http.NewResponseController(w) // a stream outlives the request timeouts
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	return &flushedSSE{w: w, f: flusher}, r.Context(), nil
}

var (
	errNoFlush = errors.New("response writer cannot flush")
	// errClientGone: the connection was taken over and the client left
	// before the headers went out; there is nobody to answer.
	errClientGone = errors.New("the client went away")
)

// flushedSSE writes through net/http.
type flushedSSE struct {
	w http.ResponseWriter
	f http.Flusher
}

func (s *flushedSSE) send(frames ...[]byte) error {
	if len(frames) == 0 {
		return nil
	}
	for _, f := range frames {
		if _, err := s.w.Write(f); err != nil {
			return err
		}
	}
	s.f.Flush()
	return nil
}

func (s *flushedSSE) end() {}

// rawSSE writes a chunked response on a hijacked connection.
type rawSSE struct {
	conn    net.Conn
	head    []byte
	bufs    [][]byte
	cancel  context.CancelFunc
	writing atomic.Int64 // when the current write began (unix ns); 0: none
	watched chan struct{}
	stall   time.Duration // sseWriteTimeout, shorter in tests
}

var crlf = []byte("\r\n")

// hijackedSSE starts a stream on a taken-over connection; a write that
// waits stall for the client ends it.
func hijackedSSE(parent context.Context, h http.Header, conn net.Conn, brw *bufio.ReadWriter, stall time.Duration) (sseOut, context.Context, error) {
	// The server's read and write timeouts are for requests, not for a
	// stream that lives for hours: the stall watch below bounds writes.
	conn.SetDeadline(time.Time{})
	ctx, cancel := context.WithCancel(parent)
	s := &rawSSE{conn: conn, cancel: cancel, watched: make(chan struct{}), stall: stall}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n")
	h.Write(&b) // net/http's own rendering, which cleans values of line breaks
	b.Write(crlf)
	go s.watch(ctx)
	s.writing.Store(time.Now().UnixNano())
	_, err := conn.Write(b.Bytes())
	s.writing.Store(0)
	if err != nil {
		s.end()
		return nil, nil, errClientGone
	}
	// The client sends nothing more on a stream; a read that returns
	// means it hung up (or broke the protocol): end the stream.
	go func() {
		io.Copy(io.Discard, brw.Reader)
		cancel()
	}()
	return s, ctx, nil
}

// send writes the frames as one chunk with one writev: the frames are the
// events' own bytes, shared by every stream, never copied here.
func (s *rawSSE) send(frames ...[]byte) error {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	if n == 0 {
		return nil
	}
	s.head = strconv.AppendInt(s.head[:0], int64(n), 16)
	s.head = append(s.head, crlf...)
	s.bufs = append(append(append(s.bufs[:0], s.head), frames...), crlf)
	s.writing.Store(time.Now().UnixNano())
	bufs := net.Buffers(s.bufs)
	_, err := bufs.WriteTo(s.conn)
	s.writing.Store(0)
	clear(s.bufs) // WriteTo consumed bufs; drop the references
	return err
}

// watch closes the connection when a write has waited sseWriteTimeout
// for the client (a deadline set around every write cost more, with a
// thousand streams, than the writes' own bookkeeping).
func (s *rawSSE) watch(ctx context.Context) {
	defer close(s.watched)
	tick := time.NewTicker(s.stall / 6)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if began := s.writing.Load(); began != 0 && now.Sub(time.Unix(0, began)) >= s.stall {
				s.conn.Close()
				return
			}
		}
	}
}

// end finishes the chunked body and closes the connection.
func (s *rawSSE) end() {
	s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	s.conn.Write([]byte("0\r\n\r\n"))
	s.conn.Close()
	s.cancel()
	<-s.watched
}
