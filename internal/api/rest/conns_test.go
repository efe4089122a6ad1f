package rest_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/mantlehq/mantle/internal/config"
)

// dialFrom opens a TCP connection to the server from a loopback address.
func dialFrom(t *testing.T, s *apptest.Server, from string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll reads until the server closes the connection (or 20 s pass,
// which fails the test).
func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server kept the connection open: %q so far", b)
	}
	return string(b)
}

// An attacker holding idle and slow connections from one address cannot
// starve a normal client: connections past the per-address cap are
// answered 503 at once, a body that never arrives and an idle keep-alive
// connection are closed, and a stream outlives the request timeouts.
func TestConnectionExhaustion(t *testing.T) {
	s := apptest.StartServing(t, ruled, func(c *config.Config) {
		c.MaxConnsPerIP, c.MaxConns = 50, 1000
		c.ReadTimeout, c.IdleTimeout, c.WriteTimeout = 4*time.Second, time.Second, 2*time.Second
	})
	// A normal client, at another address than the attacker's.
	c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	// A stream opened before the attack, to check after the timeouts.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/events/stream?collections=comments&after="+itoa(s.LastSeq()), nil)
	req.Header.Set("Authorization", "Bearer "+apptest.AdminToken)
	stream, err := c.Do(req)
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("stream: %v", err)
	}
	defer stream.Body.Close()

	conns := make([]net.Conn, 200)
	for i := range conns {
		conns[i] = dialFrom(t, s, "127.0.0.1")
	}
	// The normal client is served meanwhile.
	if resp, err := c.Get(s.URL + "/api/health"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a normal client was not served: %v", err)
	} else {
		resp.Body.Close()
	}
	rejected := 0
	for _, cn := range conns {
		if strings.HasPrefix(readAll(t, cn), "HTTP/1.1 503") {
			rejected++
		}
	}
	if rejected != 150 {
		t.Errorf("%d of 200 connections from one address were refused, want 150 past the cap of 50", rejected)
	}

	// A POST whose body never arrives is closed after the read timeout.
	slow := dialFrom(t, s, "127.0.0.3")
	io.WriteString(slow, "POST /api/collections/comments/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	readAll(t, slow)
	// An idle keep-alive connection is closed after the idle timeout.
	idle := dialFrom(t, s, "127.0.0.3")
	io.WriteString(idle, "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v", err)
	}
	readAll(t, idle)

	// The stream outlived the read and write timeouts: it still delivers.
	post := s.Do("POST", "/api/collections/posts/records", map[string]any{"title": "x"}, "admin")
	if r := s.Do("POST", "/api/collections/comments/records", map[string]any{"post": post.JSON()["id"]}, "admin"); r.Status != 201 {
		t.Fatalf("write: %d %s", r.Status, r.Body)
	}
	time.AfterFunc(20*time.Second, cancel) // a stream that delivers nothing fails the test, not hangs it
	br := bufio.NewReader(stream.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended after the request timeouts: %v", err)
		}
		if strings.HasPrefix(line, "event: ") {
			break
		}
	}
}
