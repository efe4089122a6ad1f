package gateway

import (
	"net"
	"strconv"
	"sync"
	"time"
)

// ConnLimits caps a listener's open connections, in total and per client
// address, so that one client holding thousands of idle connections cannot
// exhaust the server's file descriptors for everyone else.
type ConnLimits struct {
	Total, PerIP int
	// Reject answers a connection over a cap before it is closed (an HTTP
	// 503, say); nil closes it at once.
	Reject func(net.Conn)
}

// LimitListener returns ln with the caps applied: a connection over a cap
// is rejected at once, not queued, and its slot is never taken.
func LimitListener(ln net.Listener, l ConnLimits) net.Listener {
	return &limitListener{Listener: ln, l: l, perIP: map[string]int{}}
}

type limitListener struct {
	net.Listener
	l     ConnLimits
	mu    sync.Mutex
	total int
	perIP map[string]int
}

// Accept returns the next connection within the caps.
func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		ll.mu.Lock()
		ok := ll.total < ll.l.Total && ll.perIP[ip] < ll.l.PerIP
		if ok {
			ll.total++
			ll.perIP[ip]++
		}
		ll.mu.Unlock()
		if ok {
			return &limitedConn{Conn: c, ll: ll, ip: ip}, nil
		}
		if ll.l.Reject != nil {
			ll.l.Reject(c)
		}
		c.Close()
	}
}

// Open returns the connections open now, in total and from ip.
func (ll *limitListener) Open(ip string) (total, fromIP int) {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	return ll.total, ll.perIP[ip]
}

func (ll *limitListener) release(ip string) {
	ll.mu.Lock()
	ll.total--
	if ll.perIP[ip]--; ll.perIP[ip] <= 0 {
		delete(ll.perIP, ip)
	}
	ll.mu.Unlock()
}

type limitedConn struct {
	net.Conn
	ll   *limitListener
	ip   string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.ll.release(c.ip) })
	return err
}

func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// tooManyConns is the answer to a connection over a cap.
var tooManyConns = func() []byte {
	body := `{"type":"about:blank","title":"Service Unavailable","status":503,` +
		`"detail":"too many open connections from this address, or in total; close idle ones and retry","code":"unavailable","reason":"conn.too_many"}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\n" +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// RejectHTTP answers an HTTP connection over a cap with a 503 problem.
func RejectHTTP(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(tooManyConns)
}
