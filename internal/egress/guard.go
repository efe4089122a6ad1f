// Package egress is the server's outbound HTTP: the SSRF guard that keeps
// webhooks and functions from calling loopback, private, link-local and
// other internal addresses unless the server settings allow them.
package egress

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"

	"code.dny.dev/ssrf"
)

// cgnat is RFC 6598 shared address space, not covered by IsPrivate.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// special is the rest of the IANA special-purpose registries (IPv4 and
// IPv6) as code.dny.dev/ssrf generates them from IANA's files: this
// network (0.0.0.0/8), IETF protocol assignments (192.0.0.0/24, 2001::/23
// with Teredo), benchmarking (198.18.0.0/15), documentation, AS112, AMT,
// 6to4 (2002::/16 and its relay anycast), reserved (240.0.0.0/4), and,
// for IPv6, everything outside global unicast (2000::/3), NAT64's
// 64:ff9b::/96 among it. Ports and networks are the dialer's business.
var special = ssrf.New(ssrf.WithAnyPort(), ssrf.WithAnyNetwork())

// forbidden reports why an address must not be called from the server:
// loopback, private, link-local (cloud metadata lives there), CGNAT,
// unspecified and multicast addresses reach the server's own network, and
// every other special-purpose address (see special) is no public host.
func forbidden(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate(), cgnat.Contains(ip):
		return "private"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	case special.SafeAddr(ip) != nil:
		return "special-purpose"
	}
	return ""
}

// CheckURL refuses, before any delivery, a URL whose host is a literal
// forbidden address or localhost (the dial-time check catches names that
// resolve to one).
func CheckURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q must be an absolute http(s) URL", raw)
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" || len(host) > 10 && host[len(host)-10:] == ".localhost" {
		return fmt.Errorf("url %q is the server itself; webhooks to loopback or private addresses need --webhook-allow-private", raw)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := forbidden(ip); why != "" {
			return fmt.Errorf("url %q is a %s address; webhooks to loopback or private addresses need --webhook-allow-private", raw, why)
		}
	}
	return nil
}

// dialControl refuses connections to forbidden addresses after DNS
// resolution, so a name that resolves (or rebinds) to an inner address
// is caught too.
func dialControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: unexpected address %q", address)
	}
	if why := forbidden(ap.Addr()); why != "" {
		return fmt.Errorf("refusing to call %s, a %s address (--webhook-allow-private allows it)", ap.Addr(), why)
	}
	return nil
}

// NewDialer returns a dialer that refuses forbidden addresses after DNS
// resolution, unless allowPrivate.
func NewDialer(allowPrivate bool) *net.Dialer {
	d := &net.Dialer{}
	if !allowPrivate {
		d.Control = dialControl
	}
	return d
}
