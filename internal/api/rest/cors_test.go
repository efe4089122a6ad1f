package rest_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/testenv"
)

// playwright installs playwright-core (once, in the user's cache) beside
// testdata/cors.mjs and returns the folder to run it from.
func playwright(t *testing.T) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		testenv.SkipOrFail(t, "chromium", "npm is not installed")
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		testenv.SkipOrFail(t, "chromium", "Debian's chromium is not installed (apt-get install chromium)")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "mantle-test", "playwright-core-1.65.1")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		os.MkdirAll(dir, 0o755)
		if out, err := exec.Command(npm, "install", "--no-audit", "--no-fund", "--prefix", dir, "playwright-core@1.65.1").CombinedOutput(); err != nil {
			testenv.SkipOrFail(t, "chromium", "npm install playwright-core@1.65.1 failed: "+string(out))
		}
	}
	src, err := os.ReadFile("testdata/cors.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cors.mjs"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pageServer serves an empty page on its own origin (a loopback address
// and port of its own).
func pageServer(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!doctype html><title>app</title>"))
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// A real browser on an allowed origin calls the API (preflight included)
// and reads the exposed headers; on any other origin the browser keeps
// the answer from the page.
func TestCORSInABrowser(t *testing.T) {
	dir := playwright(t)
	allowed, denied := pageServer(t, "127.0.0.1"), pageServer(t, "127.0.0.1")
	s := apptest.StartConfig(t, blog, func(c *config.Config) { c.CORSOrigins = []string{allowed} })
	key := s.Do("POST", "/api/keys", map[string]any{"name": "web", "roles": []string{"writer"}}, "admin").JSON()["key"].(string)
	cmd := exec.Command("node", "cors.mjs", s.URL, allowed, denied, key)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the browser: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var got map[string]struct {
		Status   int
		ETag, ID string
		Seq      string
		Error    string
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if a := got["allowed"]; a.Status != 201 || a.ETag != `"1"` || a.Seq == "" || a.ID == "" {
		t.Errorf("the allowed origin saw %+v", a)
	}
	if d := got["denied"]; d.Error == "" || !strings.Contains(d.Error, "Failed to fetch") {
		t.Errorf("another origin saw %+v", d)
	}
}

// Preflights without a browser: the allowed origin gets the methods and
// headers; others get no CORS headers at all; without settings, none.
func TestCORSPreflight(t *testing.T) {
	s := apptest.StartConfig(t, blog, func(c *config.Config) { c.CORSOrigins = []string{"https://app.example.com"} })
	pre := func(s *apptest.Server, origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", s.URL+"/api/collections/posts/records", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "PATCH")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,if-match")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	r := pre(s, "https://app.example.com")
	if r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "PATCH") || r.Header.Get("Access-Control-Max-Age") != "600" {
		t.Errorf("an allowed preflight: %d %v", r.StatusCode, r.Header)
	}
	if r := pre(s, "https://evil.example.com"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("another origin got %v", r.Header)
	}
	plain := apptest.Start(t, blog)
	if r := pre(plain, "https://app.example.com"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no CORS settings, yet %v", r.Header)
	}
}

// Sign-up may answer with tokens, as a login does (a setting).
func TestSignupTokens(t *testing.T) {
	s := apptest.StartConfig(t, ruled, func(c *config.Config) { c.SignupTokens = true })
	r := s.Do("POST", "/api/auth/signup", map[string]any{"email": "eve@example.com", "password": "a fine passphrase"})
	var out struct {
		AccessToken, RefreshToken string
		User                      struct{ Email string }
	}
	json.Unmarshal(r.Body, &out)
	if r.Status != 201 || out.AccessToken == "" || !strings.HasPrefix(out.RefreshToken, "mr_") || out.User.Email != "eve@example.com" {
		t.Fatalf("sign-up with tokens: %d %s", r.Status, r.Body)
	}
	if me := s.Do("GET", "/api/auth/me", nil, bearer(out.AccessToken)); me.Status != 200 {
		t.Errorf("the sign-up's token: %d", me.Status)
	}
}
