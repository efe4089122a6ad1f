package mantle

import "context"

// Identity is the caller of a request. The zero Identity is anonymous.
type Identity struct {
	ID    string   // empty when anonymous
	Email string   // empty when unknown
	Roles []string // e.g. ["admin"]
}

// Anonymous reports whether no one is signed in.
func (i Identity) Anonymous() bool { return i.ID == "" }

// HasRole reports whether the identity has the role.
func (i Identity) HasRole(role string) bool {
	for _, r := range i.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// IsAdmin reports whether the identity passes every rule.
func (i Identity) IsAdmin() bool { return i.HasRole("admin") }

type identityKey struct{}

// WithIdentity returns a context that carries the caller's identity.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the caller's identity, anonymous if none was set.
func IdentityFrom(ctx context.Context) Identity {
	id, _ := ctx.Value(identityKey{}).(Identity)
	return id
}
