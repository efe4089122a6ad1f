package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// conn is a minimal HTTP/1.1 keep-alive client for one connection. The
// load generator shares two cores with the server it measures, so it must
// cost as little CPU per request as possible; net/http's client costs
// several times more than this (the same server measured 16k vs 10k get/s).
// It speaks only what the benchmark needs: one request at a time,
// Content-Length or chunked responses.
type conn struct {
	addr, host string
	auth       string
	c          net.Conn
	r          *bufio.Reader
	w          *bufio.Writer
	body       []byte
	seq        int64 // the last response's Mantle-Seq header, 0 if none
}

func newConn(rawURL, token string) (*conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("bench speaks plain http only, not %q", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr += ":80"
	}
	c := &conn{addr: addr, host: u.Host}
	if token != "" {
		c.auth = "Authorization: Bearer " + token + "\r\n"
	}
	return c, nil
}

func (c *conn) dial() error {
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return err
	}
	c.c, c.r, c.w = nc, bufio.NewReaderSize(nc, 64<<10), bufio.NewWriterSize(nc, 16<<10)
	return nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// do sends one request and reads the whole answer. On any error the
// connection is closed; the next call dials again.
func (c *conn) do(method, path string, body []byte) (int, []byte, error) {
	if c.c == nil {
		if err := c.dial(); err != nil {
			return 0, nil, err
		}
	}
	status, b, err := c.roundTrip(method, path, body)
	if err != nil {
		c.close()
	}
	return status, b, err
}

func (c *conn) roundTrip(method, path string, body []byte) (int, []byte, error) {
	w := c.w
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(c.host)
	w.WriteString("\r\n")
	w.WriteString(c.auth)
	if body != nil {
		w.WriteString("Content-Type: application/json\r\nContent-Length: ")
		w.WriteString(strconv.Itoa(len(body)))
		w.WriteString("\r\n\r\n")
		w.Write(body)
	} else {
		w.WriteString("\r\n")
	}
	if err := w.Flush(); err != nil {
		return 0, nil, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, closeAfter := -1, false, false
	c.seq = 0
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		if len(h) <= 2 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, _ = strconv.Atoi(string(v))
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Mantle-Seq")):
			c.seq, _ = strconv.ParseInt(string(v), 10, 64)
		case bytes.EqualFold(k, []byte("Connection")):
			closeAfter = bytes.EqualFold(v, []byte("close"))
		}
	}
	c.body = c.body[:0]
	switch {
	case chunked:
		for {
			line, err := c.r.ReadSlice('\n')
			if err != nil {
				return 0, nil, err
			}
			n, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 64)
			if err != nil {
				return 0, nil, fmt.Errorf("bad chunk size %q", line)
			}
			if n == 0 {
				c.r.ReadSlice('\n') // the blank line after the last chunk
				break
			}
			c.body = append(c.body, make([]byte, n)...)
			if _, err := io.ReadFull(c.r, c.body[len(c.body)-int(n):]); err != nil {
				return 0, nil, err
			}
			c.r.ReadSlice('\n')
		}
	case length >= 0:
		c.body = append(c.body, make([]byte, length)...)
		if _, err := io.ReadFull(c.r, c.body); err != nil {
			return 0, nil, err
		}
	case status == 204 || status == 304:
	default:
		return 0, nil, errors.New("response without length")
	}
	if closeAfter {
		c.close()
	}
	return status, c.body, nil
}
