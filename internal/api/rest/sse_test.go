package rest

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// connPair returns the two ends of a loopback TCP connection.
func connPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func hijacked(t *testing.T, stall time.Duration) (sseOut, context.Context, net.Conn) {
	t.Helper()
	server, client := connPair(t)
	brw := bufio.NewReadWriter(bufio.NewReader(server), bufio.NewWriter(server))
	out, ctx, err := hijackedSSE(context.Background(), http.Header{"X-Request-Id": {"r1"}}, server, brw, stall)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(out.end)
	return out, ctx, client
}

// On a taken-over connection the stream is a chunked HTTP/1.1 response,
// each send one chunk; a client that hangs up ends the stream.
func TestHijackedStreamChunksAndHangup(t *testing.T) {
	out, ctx, client := hijacked(t, time.Minute)
	if err := out.send([]byte("id: 1\n\n"), []byte("id: 2\n\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(client)
	var head []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
		head = append(head, strings.TrimSpace(line))
	}
	if head[0] != "HTTP/1.1 200 OK" || !slices.Contains(head, "Transfer-Encoding: chunked") || !slices.Contains(head, "X-Request-Id: r1") {
		t.Fatalf("head %q", head)
	}
	size, _ := br.ReadString('\n')
	body := make([]byte, 14+2)
	if _, err := io.ReadFull(br, body); err != nil || size != "e\r\n" || string(body) != "id: 1\n\nid: 2\n\n\r\n" {
		t.Fatalf("chunk %q %q (%v)", size, body, err)
	}
	client.Close()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end when its client hung up")
	}
}

// A client that stops reading is cut off once a write has waited the
// stall limit, instead of holding its stream forever.
func TestHijackedStreamStall(t *testing.T) {
	out, _, _ := hijacked(t, 200*time.Millisecond)
	frame := []byte(strings.Repeat("x", 64<<10))
	done := make(chan error, 1)
	go func() {
		for {
			if err := out.send(frame); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a stream to a client that never reads was not cut off")
	}
}
