package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"strings"
	"sync/atomic"

	"github.com/mantlehq/mantle"
)

type requestIDKey struct{}

// RequestID returns the id of the request in ctx.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

var (
	idPrefix  = newPrefix()
	idCounter atomic.Uint64
)

func newPrefix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Options configure the middleware chain.
type Options struct {
	Log          *slog.Logger
	MaxBodyBytes int64 // default 1 MiB
}

// Wrap puts the gateway in front of h: a request id (the client's
// X-Request-Id when sane, else a new one) echoed in the response, a body
// limit, and recovery that turns a panic into a logged 500.
func Wrap(h http.Handler, o Options) http.Handler {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = fmt.Sprintf("%s-%d", idPrefix, idCounter.Add(1))
		}
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		if clean := CleanPath(r.URL.Path); clean != r.URL.Path {
			// net/http's mux would answer a 307 in HTML; an API client
			// that sends such a path has a bug worth seeing.
			WriteError(w, r, o.Log, mantle.Errorf(mantle.Invalid, "request.unclean_path",
				"the path has empty, . or .. segments; use %s", clean))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, o.MaxBodyBytes)
			if err := decodeBody(w, r, o.MaxBodyBytes); err != nil {
				WriteError(w, r, o.Log, err)
				return
			}
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				WriteError(w, r, o.Log, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// CleanPath is path.Clean that keeps a trailing slash, as net/http's mux
// cleans paths; a path that differs from its CleanPath has empty, . or ..
// segments.
func CleanPath(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
