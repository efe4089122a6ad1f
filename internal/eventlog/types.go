package eventlog

import (
	"strings"

	"github.com/mantlehq/mantle"
)

// ReservedPrefixes are the event type families Mantle itself writes. No
// function, automation or client may emit a type that starts with one,
// in any letter case: Record.Created is as reserved as record.created.
var ReservedPrefixes = []string{"record.", "schema.", "auth.", "mantle.", "fn.", "anomaly.", "points.", "replica."}

// Reserved reports whether typ belongs to one of Mantle's own families.
func Reserved(typ string) bool {
	lower := strings.ToLower(typ)
	for _, p := range ReservedPrefixes {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return false
}

// CheckCustomType checks the type of a custom event (from a function or
// an automation): 3 to 128 letters, digits and ".-_", with a dot neither
// first nor last, and not Reserved. It returns an invalid error with
// reason event.invalid_type or event.reserved_type.
func CheckCustomType(typ string) error {
	bad := len(typ) < 3 || len(typ) > 128 || !strings.Contains(typ, ".") || strings.HasPrefix(typ, ".") || strings.HasSuffix(typ, ".")
	for _, r := range typ {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			bad = true
		}
	}
	if bad {
		return mantle.Errorf(mantle.Invalid, "event.invalid_type", "event type %q must be 3 to 128 letters, digits and .-_ with a dot, such as order.flagged", typ)
	}
	if Reserved(typ) {
		return mantle.Errorf(mantle.Invalid, "event.reserved_type", "event type %q is in one of Mantle's own families (%s*); choose another prefix",
			typ, strings.Join(ReservedPrefixes, "*, "))
	}
	return nil
}
