package realtime

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"time"
)

// hijacker keeps the connection coder/websocket takes over, so that the
// event loop can write data frames to it itself (frameWriter below).
type hijacker struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Hijack implements http.Hijacker.
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.conn = c
		// The server's request timeouts do not apply to a long-lived
		// socket: pings and the slow-consumer watch bound it instead.
		c.SetDeadline(time.Time{})
	}
	return c, brw, err
}

// frameWriter writes unmasked text frames (RFC 6455 section 5.2: a server
// never masks) straight to the connection, each message as one writev of
// its header, the small pieces around the events and the events' own
// JSON, shared by every subscriber and never copied. coder/websocket
// copies each message into its buffer, and the event loop would copy each
// event into a message first: under fan-out those two copies and the
// syscalls that a 4 KiB buffer splits a message into were half the
// server's CPU. coder/websocket still does the handshake, reads the
// client's frames, answers pings and writes the close frame; it writes
// only control frames, which are small and written whole, so its writes
// never interleave with a frame of ours inside the connection (a net.Conn
// Write is atomic with respect to other Writes).
type frameWriter struct {
	conn  net.Conn
	small []byte   // the pieces between events, for the message being built
	marks []int    // where each piece of small ends
	parts [][]byte // events' JSON, between the pieces
	iov   [][]byte
	head  [10]byte
}

// piece adds bytes to the message: appended to the current small piece.
func (f *frameWriter) piece(b ...byte) { f.small = append(f.small, b...) }

// event ends the current small piece and adds an event's shared JSON.
func (f *frameWriter) event(j []byte) {
	f.marks = append(f.marks, len(f.small))
	f.parts = append(f.parts, j)
}

// message writes what was built as one text frame and resets the builder.
func (f *frameWriter) message() error {
	n := len(f.small)
	for _, p := range f.parts {
		n += len(p)
	}
	h := f.head[:2]
	h[0] = 0x81 // FIN, text
	switch {
	case n < 126:
		h[1] = byte(n)
	case n <= 0xffff:
		h[1] = 126
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h[1] = 127
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	f.iov = append(f.iov[:0], h)
	start := 0
	for i, p := range f.parts {
		f.iov = append(f.iov, f.small[start:f.marks[i]], p)
		start = f.marks[i]
	}
	f.iov = append(f.iov, f.small[start:])
	bufs := net.Buffers(f.iov)
	_, err := bufs.WriteTo(f.conn)
	clear(f.iov) // WriteTo consumed them; drop the references
	f.small, f.marks, f.parts = f.small[:0], f.marks[:0], f.parts[:0]
	return err
}
