package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// followWS subscribes over the WebSocket API, in batch mode, and records
// every event's sequence until ctx ends. Like followSSE it speaks the
// protocol on a raw connection (RFC 6455: the handshake, masked frames
// out, unmasked frames in), for the same reason: a library client reads a
// frame in several syscalls through a 4 KiB buffer, and the load
// generator shares the two cores with the server. The API's tests use
// coder/websocket's client.
func (r *runner) followWS(ctx context.Context, after string, connected func(), got *rtSub) error {
	c, done, err := dialUntil(ctx, r.o.URL, "")
	if err != nil {
		connected()
		return fmt.Errorf("websocket: %w", err)
	}
	defer done()
	var key [16]byte
	rand.Read(key[:])
	path := "/api/realtime/ws"
	if r.o.Token != "" {
		path += "?token=" + r.o.Token
	}
	c.w.WriteString("GET " + path + " HTTP/1.1\r\nHost: " + c.host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\n\r\n")
	err = c.w.Flush()
	if err == nil {
		err = c.upgraded()
	}
	if err == nil {
		err = c.sendText([]byte(`{"type":"subscribe","id":"b","collections":["` + r.o.Collection + `"],"after":` + after + `,"batch":true}`))
	}
	connected()
	if err != nil {
		return fmt.Errorf("websocket subscribe: %w", err)
	}
	var msg []byte
	for {
		op, payload, err := c.readFrame(&msg)
		if err != nil || op == 8 { // close
			return nil
		}
		if op != 1 {
			continue
		}
		// Every event of a message, single or batched, starts with
		// {"specversion":"1.0","id":"<seq>".
		now := time.Now().UnixNano()
		for m := payload; ; {
			i := bytes.Index(m, wsEventStart)
			if i < 0 {
				break
			}
			m = m[i+len(wsEventStart):]
			got.record(parseSeq(m), now)
		}
	}
}

var wsEventStart = []byte(`{"specversion":"1.0","id":"`)

// upgraded reads the handshake's answer.
func (c *conn) upgraded() error {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 101")) {
		return fmt.Errorf("handshake: %q", bytes.TrimSpace(line))
	}
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(h) <= 2 {
			return nil
		}
	}
}

// sendText writes one masked text frame (clients always mask).
func (c *conn) sendText(p []byte) error {
	var mask [4]byte
	rand.Read(mask[:])
	h := []byte{0x81, 0x80}
	switch {
	case len(p) < 126:
		h[1] |= byte(len(p))
	case len(p) <= 0xffff:
		h[1] |= 126
		h = binary.BigEndian.AppendUint16(h, uint16(len(p)))
	default:
		h[1] |= 127
		h = binary.BigEndian.AppendUint64(h, uint64(len(p)))
	}
	h = append(h, mask[:]...)
	masked := make([]byte, len(p))
	for i := range p {
		masked[i] = p[i] ^ mask[i%4]
	}
	c.w.Write(h)
	c.w.Write(masked)
	return c.w.Flush()
}

// readFrame reads one whole frame from the server (unmasked) into *buf and
// returns its opcode and payload.
func (c *conn) readFrame(buf *[]byte) (byte, []byte, error) {
	return readWSFrame(c.r, buf, false)
}

// readWSFrame reads one whole frame into *buf and returns its opcode and
// payload: a server's frame (masked false: a mask is an error) or a
// client's (masked true: the payload is unmasked).
func readWSFrame(r io.Reader, buf *[]byte, masked bool) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 != masked {
		return 0, nil, fmt.Errorf("a frame masked %v, want %v", h[1]&0x80 != 0, masked)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 16<<20 {
		return 0, nil, fmt.Errorf("a frame of %d bytes", n)
	}
	var mask [4]byte
	if masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	if uint64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	p := (*buf)[:n]
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	return h[0] & 0x0f, p, nil
}
