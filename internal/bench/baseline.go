package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Baseline returns a bare net/http handler that answers the benchmark's
// requests with JSON of the same shape and size as Mantle's, doing no
// work: the loopback ceiling of this machine. A create also publishes its
// event to the baseline's SSE and WebSocket subscribers (fanout), so that
// the realtime workload has a ceiling too.
func Baseline(bodyBytes int) http.Handler {
	f := newFanout()
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000000Z")
	record := fmt.Sprintf(`{"id":"01jd3xk9v6q8w2m4n5p7r9s1t3","createdAt":%q,"updatedAt":%q,"version":1,"title":"bench-0000000-1","body":"%s","views":4242,"published":null,"tags":null,"status":null,"author":null,"publishedAt":null}`,
		now, now, strings.Repeat("x", bodyBytes))
	items := strings.Repeat(record+",", 19) + record
	page := []byte(`{"items":[` + items + `],"nextCursor":"eyJzIjoiLXZpZXdzLC1pZCIsInYiOls0MjQyLCIwMWpkM3hrOXY2cTh3Mm00bjVwN3I5czF0MyJdfQ"}` + "\n")
	one := []byte(record + "\n")
	mux := http.NewServeMux()
	mux.HandleFunc("/api/batch", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		// Enough results for a preload batch of 500.
		w.Write([]byte(`{"results":[` + strings.Repeat(`{"id":"01jd3xk9v6q8w2m4n5p7r9s1t3"},`, 499) + `{"id":"01jd3xk9v6q8w2m4n5p7r9s1t3"}]}`))
	})
	mux.HandleFunc("/api/collections/{c}/records", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			f.create(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		w.Write(page)
	})
	mux.HandleFunc("/api/collections/{c}/records/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"1"`)
		w.Write(one)
	})
	mux.HandleFunc("GET /api/events/stream", f.sse)
	mux.HandleFunc("GET /api/realtime/ws", f.ws)
	return mux
}

// ServeBaseline serves the baseline on ln until ctx ends (nil) or serving
// fails.
func ServeBaseline(ctx context.Context, ln net.Listener, bodyBytes int) error {
	hs := &http.Server{Handler: Baseline(bodyBytes), ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() { hs.Close() })
	defer stop()
	if err := hs.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
