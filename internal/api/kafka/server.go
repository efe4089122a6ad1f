// Package kafka speaks enough of the Kafka wire protocol that unmodified
// Kafka clients can consume the event log: one topic per collection plus
// mantle.log for the whole log, one partition each, offset = sequence - 1,
// each record a CloudEvent in the Kafka protocol binding (binary mode:
// ce_ headers, the event's data as a JSON value). Message encodings come
// from github.com/twmb/franz-go/pkg/kmsg; the framing, the record batches
// and the broker logic are here. The log is read-only: producing gets a
// clear Kafka error. See docs/kafka.md.
package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/auth"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LogTopic is the topic of the whole log.
const LogTopic = "mantle.log"

// maxFrame bounds a request: clients send small requests to a read-only
// broker.
const maxFrame = 8 << 20

// Options configure the server.
type Options struct {
	Engine *engine.Engine
	Hub    *eventlog.Hub
	Auth   *auth.Service
	Log    *slog.Logger
	// Advertise is the host:port clients are told to connect to; default
	// the listener's address.
	Advertise string
}

// Server is a Kafka-protocol listener.
type Server struct {
	o      Options
	host   string
	port   int32
	groups *coordinator

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Serve accepts connections on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, o Options) error {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	adv := o.Advertise
	if adv == "" {
		adv = ln.Addr().String()
	}
	host, portS, err := net.SplitHostPort(adv)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(portS)
	s := &Server{o: o, host: host, port: int32(port), conns: map[net.Conn]struct{}{}}
	s.groups = newCoordinator(ctx, s)
	go func() {
		<-ctx.Done()
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			(&conn{s: s, c: c, r: bufio.NewReaderSize(c, 64<<10)}).serve(ctx)
		}()
	}
}

// conn is one client connection; requests are answered in order.
type conn struct {
	s *Server
	c net.Conn
	r *bufio.Reader

	id mantle.Identity
	// revoked is closed when the SASL credential is revoked or expires
	// (auth.Service.Watch): the connection is closed then, and no batch
	// built after it carries an event.
	revoked  <-chan struct{}
	unwatch  func()
	saslDone bool
	saslMech bool // a SaslHandshake named PLAIN
	saslRaw  bool // it was v0: the next frame is a raw PLAIN token
}

// supported lists the API versions this broker answers. Fetch stops at
// v12 and Metadata at v11 so that topics are named, not identified by id.
var supported = map[int16][2]int16{
	0:  {3, 9},  // Produce: refused, read-only
	1:  {4, 12}, // Fetch
	2:  {1, 7},  // ListOffsets
	3:  {1, 11}, // Metadata
	8:  {2, 8},  // OffsetCommit
	9:  {1, 7},  // OffsetFetch
	10: {0, 3},  // FindCoordinator
	11: {0, 7},  // JoinGroup
	12: {0, 4},  // Heartbeat
	13: {0, 4},  // LeaveGroup
	14: {0, 5},  // SyncGroup
	17: {0, 1},  // SaslHandshake (v0: raw SASL tokens follow)
	18: {0, 3},  // ApiVersions
	36: {0, 2},  // SaslAuthenticate
}

type header struct {
	key, version int16
	correlation  int32
}

func (c *conn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() {
		if c.unwatch != nil {
			c.unwatch()
		}
	}()
	var lenBuf [4]byte
	for {
		if _, err := io.ReadFull(c.r, lenBuf[:]); err != nil {
			return
		}
		n := int32(binary.BigEndian.Uint32(lenBuf[:]))
		if n < 8 || n > maxFrame {
			c.s.o.Log.Warn("kafka: bad frame size; closing", "size", n, "remote", c.c.RemoteAddr())
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(c.r, frame); err != nil {
			return
		}
		if c.saslRaw { // SaslHandshake v0: this frame is the PLAIN token itself
			c.saslRaw = false
			r := &kmsg.SASLAuthenticateRequest{SASLAuthBytes: frame}
			if resp := c.saslAuthenticate(ctx, r).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != 0 {
				return // v0 has no way to say why: close
			}
			if _, err := c.c.Write([]byte{0, 0, 0, 0}); err != nil {
				return
			}
			continue
		}
		resp, h, err := c.handle(ctx, frame)
		if err != nil {
			c.s.o.Log.Warn("kafka: bad request; closing", "err", err, "remote", c.c.RemoteAddr())
			return
		}
		if resp == nil {
			continue
		}
		if err := c.write(h, resp); err != nil {
			return
		}
	}
}

// handle decodes one request and answers it.
func (c *conn) handle(ctx context.Context, frame []byte) (kmsg.Response, header, error) {
	var h header
	h.key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.correlation = int32(binary.BigEndian.Uint32(frame[4:]))
	rest := frame[8:]
	if len(rest) < 2 {
		return nil, h, errors.New("no client id")
	}
	idLen := int16(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if idLen > 0 {
		if int(idLen) > len(rest) {
			return nil, h, errors.New("client id runs past the frame")
		}
		rest = rest[idLen:]
	}
	rng, ok := supported[h.key]
	if h.key == 18 && (!ok || h.version > rng[1]) {
		// An ApiVersions we cannot parse: answer v0 with the error, so
		// the client retries with a version we know.
		r := kmsg.NewPtrApiVersionsResponse()
		r.ErrorCode = 35 // UNSUPPORTED_VERSION
		r.ApiKeys = apiKeys()
		h.version = 0
		return r, h, nil
	}
	if !ok || h.version < rng[0] || h.version > rng[1] {
		return nil, h, fmt.Errorf("unsupported %s v%d", kmsg.NameForKey(h.key), h.version)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return nil, h, err
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return nil, h, fmt.Errorf("%s v%d: %w", kmsg.NameForKey(h.key), h.version, err)
	}
	if c.needsAuth(h.key) {
		return nil, h, errors.New("SASL authentication did not finish before other requests")
	}
	resp, err := c.dispatch(ctx, req)
	if resp != nil {
		resp.SetVersion(h.version)
	}
	return resp, h, err
}

// needsAuth: after a SaslHandshake, nothing but SaslAuthenticate (and
// ApiVersions) may come before authentication succeeds.
func (c *conn) needsAuth(key int16) bool {
	return c.saslMech && !c.saslDone && key != 36 && key != 18 && key != 17
}

func skipTags(b []byte) ([]byte, error) {
	n, m := binary.Uvarint(b)
	if m <= 0 {
		return nil, errors.New("bad tagged fields")
	}
	b = b[m:]
	for i := uint64(0); i < n; i++ {
		if _, m = binary.Uvarint(b); m <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[m:]
		size, m := binary.Uvarint(b)
		if m <= 0 || uint64(len(b)-m) < size {
			return nil, errors.New("bad tag size")
		}
		b = b[m+int(size):]
	}
	return b, nil
}

func (c *conn) write(h header, resp kmsg.Response) error {
	buf := make([]byte, 8, 256)
	binary.BigEndian.PutUint32(buf[4:], uint32(h.correlation))
	if resp.IsFlexible() && h.key != 18 { // ApiVersions answers with header v0, always
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	c.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := c.c.Write(buf)
	return err
}

func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(supported))
	for k := int16(0); k < 100; k++ {
		if r, ok := supported[k]; ok {
			keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: r[0], MaxVersion: r[1]})
		}
	}
	return keys
}

func (c *conn) dispatch(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		resp.ApiKeys = apiKeys()
		return resp, nil
	case *kmsg.SASLHandshakeRequest:
		resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = []string{"PLAIN"}
		if r.Mechanism != "PLAIN" {
			resp.ErrorCode = 33 // UNSUPPORTED_SASL_MECHANISM
		} else {
			c.saslMech = true
			c.saslRaw = r.Version == 0
		}
		return resp, nil
	case *kmsg.SASLAuthenticateRequest:
		return c.saslAuthenticate(ctx, r), nil
	case *kmsg.MetadataRequest:
		return c.metadata(r), nil
	case *kmsg.ListOffsetsRequest:
		return c.listOffsets(ctx, r), nil
	case *kmsg.FetchRequest:
		return c.fetch(ctx, r), nil
	case *kmsg.FindCoordinatorRequest:
		resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
		resp.NodeID, resp.Host, resp.Port = 0, c.s.host, c.s.port
		return resp, nil
	case *kmsg.ProduceRequest:
		if r.Acks == 0 {
			return nil, nil // the client waits for no answer
		}
		return produceRefused(r), nil
	case *kmsg.JoinGroupRequest, *kmsg.SyncGroupRequest, *kmsg.HeartbeatRequest, *kmsg.LeaveGroupRequest,
		*kmsg.OffsetCommitRequest, *kmsg.OffsetFetchRequest:
		return c.s.groups.handle(ctx, c, req), nil
	}
	return nil, fmt.Errorf("no handler for %s", kmsg.NameForKey(req.Key()))
}

// saslAuthenticate checks PLAIN credentials: the password is an API key
// (or an access token); the user name is informational.
func (c *conn) saslAuthenticate(ctx context.Context, r *kmsg.SASLAuthenticateRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	fail := func(msg string) kmsg.Response {
		resp.ErrorCode = 58 // SASL_AUTHENTICATION_FAILED
		resp.ErrorMessage = &msg
		return resp
	}
	if !c.saslMech {
		return fail("send SaslHandshake with PLAIN first")
	}
	parts := splitPlain(r.SASLAuthBytes)
	if parts == nil {
		return fail("PLAIN credentials are authzid\\0user\\0password")
	}
	id, cred, err := c.s.o.Auth.Authenticate(ctx, "Bearer "+parts[2])
	if err != nil || id.Anonymous() {
		return fail("the password must be a valid API key")
	}
	if c.unwatch != nil {
		c.unwatch()
	}
	c.revoked, c.unwatch = c.s.o.Auth.Watch(cred)
	go func(revoked <-chan struct{}) {
		select {
		case <-revoked:
			c.c.Close() // the client reconnects and must authenticate again
		case <-ctx.Done():
		}
	}(c.revoked)
	c.id, c.saslDone = id, true
	return resp
}

func splitPlain(b []byte) []string {
	var parts []string
	start := 0
	for i, x := range b {
		if x == 0 {
			parts = append(parts, string(b[start:i]))
			start = i + 1
		}
	}
	parts = append(parts, string(b[start:]))
	if len(parts) != 3 || parts[2] == "" {
		return nil
	}
	return parts
}

func produceRefused(r *kmsg.ProduceRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	msg := "the Mantle log is read-only over Kafka; write through the API"
	for _, t := range r.Topics {
		rt := kmsg.ProduceResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, kmsg.ProduceResponseTopicPartition{
				Partition: p.Partition, ErrorCode: 29, BaseOffset: -1, LogAppendTime: -1, ErrorMessage: &msg}) // TOPIC_AUTHORIZATION_FAILED
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
