// Package apptest runs a real Mantle server in-process for tests: a temp
// project folder and SQLite data folder, the full HTTP stack behind
// httptest, and a scenario runner that asserts status, body and the events
// each call emits.
package apptest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mantlehq/mantle/internal/app"
	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/fn/fntest"
	"github.com/mantlehq/mantle/internal/testenv"
)

// AdminToken is the admin secret of test servers.
const AdminToken = "test-admin-token"

// Server is a running test server.
type Server struct {
	URL    string
	App    *app.App
	Dir    string           // the project folder
	Data   string           // the data folder
	http   *httptest.Server // nil when serving with app.Serve
	stop   func()           // ends app.Serve
	t      testing.TB
	client *http.Client

	closeOnce sync.Once
}

// Start serves the project text in a temp folder until the test ends.
func Start(t testing.TB, project string) *Server {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mantle.yaml"), []byte(project), 0o644); err != nil {
		t.Fatal(err)
	}
	return startDir(t, dir, filepath.Join(dir, "mantle_data"), nil)
}

// StartConfig is Start with settings changed by set.
func StartConfig(t testing.TB, project string, set func(*config.Config)) *Server {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mantle.yaml"), []byte(project), 0o644); err != nil {
		t.Fatal(err)
	}
	return startDir(t, dir, filepath.Join(dir, "mantle_data"), set)
}

// StartDir serves an existing project folder with a data folder.
func StartDir(t testing.TB, dir, data string) *Server {
	t.Helper()
	return startDir(t, dir, data, nil)
}

func startDir(t testing.TB, dir, data string, set func(*config.Config)) *Server {
	t.Helper()
	s, err := tryStart(t, dir, data, set)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// StartDirConfig is StartDir with settings changed by set.
func StartDirConfig(t testing.TB, dir, data string, set func(*config.Config)) *Server {
	t.Helper()
	return startDir(t, dir, data, set)
}

// TryStartDir starts a server like StartDirConfig but returns the error
// of a project that does not start, for tests of refusals.
func TryStartDir(t testing.TB, dir, data string, set func(*config.Config)) error {
	t.Helper()
	_, err := tryStart(t, dir, data, set)
	return err
}

// StartDirWith is StartDirConfig with before run after the project is
// applied and before the webhooks, functions and automations start: to
// set hooks on the app or seed its store. set may be nil.
func StartDirWith(t testing.TB, dir, data string, set func(*config.Config), before func(*app.App)) *Server {
	t.Helper()
	s, err := tryStartWith(t, dir, data, set, before)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tryStart(t testing.TB, dir, data string, set func(*config.Config)) (*Server, error) {
	return tryStartWith(t, dir, data, set, nil)
}

// StartServing is StartConfig with the server's own listener stack
// (app.Serve: timeouts and connection caps) instead of httptest's, for
// tests of what happens to connections.
func StartServing(t testing.TB, project string, set func(*config.Config)) *Server {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mantle.yaml"), []byte(project), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := start(t, dir, filepath.Join(dir, "mantle_data"), set, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tryStartWith(t testing.TB, dir, data string, set func(*config.Config), before func(*app.App)) (*Server, error) {
	return start(t, dir, data, set, before, false)
}

func start(t testing.TB, dir, data string, set func(*config.Config), before func(*app.App), serve bool) (*Server, error) {
	cfg := config.Default()
	cfg.Project, cfg.Data, cfg.AdminToken = dir, data, AdminToken
	cfg.SignInLimit = 10_000 // tests sign in often; the throttling test sets its own
	cfg.WasmCache = fntest.CacheDir()
	if b, err := os.ReadFile(filepath.Join(dir, "mantle.yaml")); err == nil && bytes.Contains(b, []byte("\nfunctions:")) {
		fntest.Precompile(t, dir)
	}
	if os.Getenv("MANTLE_TEST_STORE") == "postgres" {
		cfg.Store = postgresStore(t, data)
	}
	// The listener comes first, so the server knows its public URL (OIDC
	// callbacks are built from it, never from the Host header).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg.PublicURL = "http://" + ln.Addr().String()
	if set != nil {
		set(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx := context.Background()
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if err := a.ApplyProject(ctx); err != nil {
		ln.Close()
		a.Close()
		return nil, err
	}
	if before != nil {
		before(a)
	}
	if err := a.StartWorkers(ctx); err != nil {
		ln.Close()
		a.Close()
		return nil, err
	}
	if serve {
		sctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); a.Serve(sctx, ln) }()
		s := &Server{URL: cfg.PublicURL, App: a, Dir: dir, Data: data, t: t, client: &http.Client{},
			stop: func() { stop(); <-done }}
		t.Cleanup(s.Close)
		return s, nil
	}
	hs := httptest.NewUnstartedServer(a.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	s := &Server{URL: hs.URL, App: a, Dir: dir, Data: data, http: hs, t: t, client: hs.Client()}
	t.Cleanup(s.Close)
	return s, nil
}

// postgresStore returns the store URL of a PostgreSQL schema of the data
// folder's own (a restart on the same folder finds the same schema),
// dropped when the test ends. MANTLE_TEST_STORE=postgres runs every API
// test on PostgreSQL (MANTLE_TEST_POSTGRES_URL).
func postgresStore(t testing.TB, data string) string {
	t.Helper()
	base := testenv.PostgresURL(t)
	sum := sha256.Sum256([]byte(data))
	name := "mantle_api_" + hex.EncodeToString(sum[:6])
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+name+` CASCADE`)
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + name
}

// Close stops the server and closes the store. It may be called more
// than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.http != nil {
			s.http.CloseClientConnections()
			s.http.Close()
		} else {
			s.stop()
		}
		s.App.Close()
	})
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value.
func (r *Response) JSON() map[string]any {
	var m map[string]any
	json.Unmarshal(r.Body, &m)
	return m
}

// Do sends a request. body may be a string (sent as is) or any value
// (sent as JSON). headers are "Name: value" strings; "admin" adds the
// admin token.
func (s *Server) Do(method, path string, body any, headers ...string) *Response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		if h == "admin" {
			req.Header.Set("Authorization", "Bearer "+AdminToken)
			continue
		}
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// LastSeq returns the end of the event log.
func (s *Server) LastSeq() int64 {
	s.t.Helper()
	n, err := s.App.Store.LastSeq(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// EventsAfter returns "type collection" for each event after seq.
func (s *Server) EventsAfter(seq int64) []string {
	s.t.Helper()
	r := s.Do("GET", "/api/events?limit=1000&after="+itoa(seq), nil, "admin")
	var page struct {
		Events []struct{ Type, Source string }
	}
	if err := json.Unmarshal(r.Body, &page); err != nil {
		s.t.Fatalf("events: %v: %s", err, r.Body)
	}
	out := []string{}
	for _, e := range page.Events {
		out = append(out, e.Type+" "+strings.TrimPrefix(e.Source, "/collections/"))
	}
	return out
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// SignUp creates a user through the API and returns its id.
func (s *Server) SignUp(email, password string) string {
	s.t.Helper()
	r := s.Do("POST", "/api/auth/signup", map[string]any{"email": email, "password": password})
	if r.Status != 201 {
		s.t.Fatalf("signup %s: %d %s", email, r.Status, r.Body)
	}
	var out struct {
		User struct{ ID string }
	}
	json.Unmarshal(r.Body, &out)
	return out.User.ID
}

// Login signs a user in and returns the access and refresh tokens.
func (s *Server) Login(email, password string) (access, refresh string) {
	s.t.Helper()
	r := s.Do("POST", "/api/auth/login", map[string]any{"email": email, "password": password})
	if r.Status != 200 {
		s.t.Fatalf("login %s: %d %s", email, r.Status, r.Body)
	}
	var out struct{ AccessToken, RefreshToken string }
	json.Unmarshal(r.Body, &out)
	return out.AccessToken, out.RefreshToken
}

// User signs up and logs in a user, returning its id and an
// "Authorization: Bearer …" header for Do and scenarios.
func (s *Server) User(email string) (id, bearer string) {
	s.t.Helper()
	id = s.SignUp(email, "password-"+email)
	access, _ := s.Login(email, "password-"+email)
	return id, "Authorization: Bearer " + access
}
