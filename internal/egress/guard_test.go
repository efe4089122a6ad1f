package egress

import (
	"net/netip"
	"strings"
	"testing"
)

func TestForbidden(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback",
		"10.0.0.1": "private", "172.16.5.4": "private", "192.168.1.1": "private", "fd00::1": "private", "100.64.0.1": "private",
		"169.254.169.254": "link-local", "fe80::1": "link-local",
		"0.0.0.0": "unspecified", "::": "unspecified", "239.1.1.1": "multicast", "224.0.0.1": "link-local",
		"93.184.216.34": "", "2606:4700::1111": "", "8.8.8.8": "", "2a00:1450:4001::1": "",
		// The rest of IANA's special-purpose registries.
		"0.1.2.3": "special-purpose", "0.255.255.255": "special-purpose", "192.0.0.8": "special-purpose",
		"192.0.2.1": "special-purpose", "198.18.0.1": "special-purpose", "198.19.255.254": "special-purpose",
		"198.51.100.7": "special-purpose", "203.0.113.9": "special-purpose", "192.88.99.1": "special-purpose",
		"192.31.196.1": "special-purpose", "192.52.193.1": "special-purpose", "192.175.48.1": "special-purpose",
		"240.0.0.1": "special-purpose", "255.255.255.255": "special-purpose",
		"64:ff9b::7f00:1": "special-purpose", "64:ff9b::a9fe:a9fe": "special-purpose", "64:ff9b:1::1": "special-purpose",
		"2002:7f00:1::": "special-purpose", "2002:c0a8:101::1": "special-purpose",
		"2001:0:4136:e378:8000:63bf:3fff:fdd2": "special-purpose", "2001:db8::1": "special-purpose", "3fff::1": "special-purpose",
		"100::1": "special-purpose", "::ffff:0:a00:1": "special-purpose", "::127.0.0.1": "special-purpose",
		"2620:4f:8000::1": "special-purpose",
		"::ffff:10.0.0.1": "private", "::ffff:169.254.169.254": "link-local",
	} {
		if got := forbidden(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}

// The dial-time check refuses what a name resolved to, so DNS cannot
// smuggle an inner address past CheckURL.
func TestDialControl(t *testing.T) {
	if err := dialControl("tcp", "127.0.0.1:80", nil); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("loopback: %v", err)
	}
	if err := dialControl("tcp", "[fd00::1]:443", nil); err == nil {
		t.Error("a private IPv6 address was allowed")
	}
	if err := dialControl("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("a public address: %v", err)
	}
	if err := CheckURL("https://hooks.example.com/x", false); err != nil {
		t.Errorf("a public name: %v", err)
	}
	if err := CheckURL("http://127.0.0.1/x", true); err != nil {
		t.Errorf("allowed private: %v", err)
	}
}
