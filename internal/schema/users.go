package schema

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/mail"
	"slices"
	"strings"
)

// UsersCollection is the name of the built-in users collection.
const UsersCollection = "users"

// RolesField is the users field that holds a user's roles (a JSON list of
// strings). Only administrators may set it.
const RolesField = "roles"

// Default rules of the users collection: a signed-in user sees and
// edits their own record (but not their roles); everything else is for
// administrators. A project may replace any of them.
var usersRules = Rules{
	OpList:   "record.id == auth.id",
	OpView:   "record.id == auth.id",
	OpUpdate: "record.id == auth.id",
}

// BuiltinUsers returns the built-in users collection. A project may add
// fields, indexes and rules to it; its own fields cannot be redefined.
func BuiltinUsers() *Collection {
	max := 320.0
	return &Collection{
		Name:   UsersCollection,
		System: true,
		Fields: []*Field{
			{Name: "email", Type: Text, Required: true, Max: &max},
			{Name: "name", Type: Text},
			{Name: "roles", Type: JSON},
		},
		Indexes: []Index{{Fields: []string{"email"}, Unique: true}},
		Rules:   maps.Clone(usersRules),
	}
}

// MaxRoles and MaxRoleLength bound a user's roles.
const (
	MaxRoles      = 64
	MaxRoleLength = 64
)

// NormalizeEmail trims and lower-cases an address and checks its form: a
// bare address (no display name, no angle brackets) of at most 320 bytes.
// Every path that stores a user's email goes through it, so emails are
// unique whatever their case.
func NormalizeEmail(email string) (string, bool) {
	e := strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > 320 {
		return "", false
	}
	return e, true
}

// NormalizeUser checks and normalises the built-in fields of a users
// record in data (a create's fields or an update's changes): email as
// NormalizeEmail, roles as a list of distinct role names (letters, digits,
// '_', '-', ':' and '.', 1 to 64 each, at most 64), rewritten sorted. It
// returns the problems by field name, prefixed with pfx.
func NormalizeUser(data map[string]any, pfx string) map[string]string {
	problems := map[string]string{}
	if v, ok := data["email"]; ok {
		s, _ := v.(string)
		if e, ok := NormalizeEmail(s); ok {
			data["email"] = e
		} else {
			problems[pfx+"email"] = "not a valid address"
		}
	}
	if v, ok := data[RolesField]; ok && v != nil {
		raw, _ := v.(json.RawMessage)
		var roles []string
		if err := json.Unmarshal(raw, &roles); err != nil || len(roles) > MaxRoles {
			problems[pfx+RolesField] = fmt.Sprintf("must be a list of at most %d role names, such as [\"editor\"]", MaxRoles)
		} else if bad := slices.IndexFunc(roles, func(r string) bool { return !validRole(r) }); bad >= 0 {
			problems[pfx+RolesField] = fmt.Sprintf("role %q must be 1 to %d letters, digits, '_', '-', ':' or '.'", roles[bad], MaxRoleLength)
		} else {
			slices.Sort(roles)
			roles = slices.Compact(roles)
			b, _ := json.Marshal(roles)
			data[RolesField] = json.RawMessage(b)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return problems
}

func validRole(r string) bool {
	if len(r) == 0 || len(r) > MaxRoleLength {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == ':' || c == '.') {
			return false
		}
	}
	return true
}
