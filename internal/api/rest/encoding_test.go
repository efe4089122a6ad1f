package rest_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mantlehq/mantle/internal/apptest"
)

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func raw(t *testing.T, s *apptest.Server, method, path string, body []byte, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true} // see the answer as sent
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// Request bodies may be gzip (limited after inflating), a byte order mark
// is tolerated, other encodings are refused; answers are gzip when the
// client asks and they are worth it.
func TestEncodings(t *testing.T) {
	s := apptest.Start(t, blog)
	js := map[string]string{"Content-Type": "application/json"}
	gzh := map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}
	if r, b := raw(t, s, "POST", "/api/collections/posts/records", gz([]byte(`{"title":"zipped"}`)), gzh); r.StatusCode != 201 {
		t.Errorf("a gzip body: %d %s", r.StatusCode, b)
	}
	bomb := gz(append([]byte(`{"title":"`), bytes.Repeat([]byte("a"), 8<<20)...))
	if r, b := raw(t, s, "POST", "/api/collections/posts/records", bomb, gzh); r.StatusCode != 413 || !strings.Contains(string(b), "request.too_large") {
		t.Errorf("a %d KiB gzip body of 8 MiB: %d %s", len(bomb)>>10, r.StatusCode, b)
	}
	if r, b := raw(t, s, "POST", "/api/collections/posts/records", []byte(`{"title":"x"}`), gzh); r.StatusCode != 400 || !strings.Contains(string(b), "request.invalid_encoding") {
		t.Errorf("a body that is not gzip: %d %s", r.StatusCode, b)
	}
	if r, b := raw(t, s, "POST", "/api/collections/posts/records", []byte(`{"title":"x"}`), map[string]string{"Content-Type": "application/json", "Content-Encoding": "br"}); r.StatusCode != 415 || !strings.Contains(string(b), "request.unsupported_encoding") {
		t.Errorf("a brotli body: %d %s", r.StatusCode, b)
	}
	if r, b := raw(t, s, "POST", "/api/collections/posts/records", []byte("\xef\xbb\xbf{\"title\":\"bom\"}"), js); r.StatusCode != 201 {
		t.Errorf("a body with a BOM: %d %s", r.StatusCode, b)
	}
	for i := 0; i < 30; i++ {
		s.Do("POST", "/api/collections/posts/records", map[string]any{"title": strings.Repeat("p", 10) + string(rune('a'+i%26)) + string(rune('a'+i/26)), "body": strings.Repeat("words ", 20)})
	}
	r, b := raw(t, s, "GET", "/api/collections/posts/records?limit=30", nil, map[string]string{"Accept-Encoding": "gzip"})
	if r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("a large page for a client that accepts gzip: %v", r.Header)
	} else if zr, err := gzip.NewReader(bytes.NewReader(b)); err != nil {
		t.Error(err)
	} else if plain, _ := io.ReadAll(zr); !bytes.Contains(plain, []byte(`"items":[`)) {
		t.Errorf("the page inflates to %.100s", plain)
	}
	if r, _ := raw(t, s, "GET", "/api/health", nil, map[string]string{"Accept-Encoding": "gzip"}); r.Header.Get("Content-Encoding") != "" {
		t.Error("a tiny answer was compressed")
	}
	if r, _ := raw(t, s, "GET", "/api/collections/posts/records?limit=30", nil, nil); r.Header.Get("Content-Encoding") != "" {
		t.Error("compressed for a client that did not ask")
	}
}
