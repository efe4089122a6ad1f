// Package natstest gives tests a NATS server with JetStream: the one
// MANTLE_TEST_NATS_URL names, or else a real nats-server started in the
// test's process on a free loopback port with its store in a temp folder,
// so that the bus and cluster tests run on a machine without NATS too.
package natstest

import (
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// URL returns the NATS server for the test.
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("MANTLE_TEST_NATS_URL"); u != "" {
		return u
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("start an in-process NATS server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("the in-process NATS server did not start")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL()
}
