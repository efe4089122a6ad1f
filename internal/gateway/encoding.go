package gateway

import (
	"io"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
	"github.com/mantlehq/mantle"
)

// decodeBody undoes a request's Content-Encoding: gzip bodies are
// inflated, and limited again after inflating, so that a small bomb cannot
// become a large body (413 as for any body past the limit). Other
// encodings are refused (415). The handler sees a plain body.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64) error {
	ce := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch ce {
	case "", "identity":
		return nil
	case "gzip", "x-gzip":
	default:
		return &mantle.Error{Code: mantle.Invalid, Reason: "request.unsupported_encoding", Status: http.StatusUnsupportedMediaType,
			Message: "Content-Encoding " + ce + " is not accepted; send the body as is, or gzip"}
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		return mantle.Errorf(mantle.Invalid, "request.invalid_encoding", "the body is not gzip, though Content-Encoding says so: %v", err)
	}
	r.Body = http.MaxBytesReader(w, gzipBody{zr, r.Body}, limit)
	r.Header.Del("Content-Encoding")
	r.Header.Del("Content-Length")
	r.ContentLength = -1
	return nil
}

type gzipBody struct {
	*gzip.Reader
	raw io.Closer
}

func (g gzipBody) Close() error {
	g.Reader.Close()
	return g.raw.Close()
}

// minCompressed is the smallest answer worth compressing: below about a
// packet, gzip saves nothing a client would notice and costs CPU.
const minCompressed = 1400

// Compress wraps h so that answers of at least minCompressed bytes go out
// gzip-compressed (at the fastest level) to clients that accept it, except
// for the requests skip names (streams, which flush event by event on a
// connection of their own).
func Compress(h http.Handler, skip func(*http.Request) bool) http.Handler {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(minCompressed), gzhttp.CompressionLevel(gzip.BestSpeed))
	if err != nil {
		panic(err) // the options above are valid
	}
	gz := wrap(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if skip(r) || r.Header.Get("Accept-Encoding") == "" {
			h.ServeHTTP(w, r)
			return
		}
		gz.ServeHTTP(w, r)
	})
}
