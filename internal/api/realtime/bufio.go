package realtime

import (
	"bufio"
	"net"
	"net/http"
)

// writeBuffer is the size of a connection's write buffer. coder/websocket
// writes a message through the buffer of the hijacked connection, which
// net/http makes 4 KiB: a message larger than that took two or three
// write syscalls instead of one. Batched messages under load are a few
// tens of KiB.
const writeBuffer = 32 << 10

// bigWrites hands coder/websocket the hijacked connection with a larger
// write buffer.
type bigWrites struct{ http.ResponseWriter }

func (b bigWrites) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// Hijack implements http.Hijacker.
func (b bigWrites) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(b.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(c, writeBuffer)), nil
}
