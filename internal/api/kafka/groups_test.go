package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/api/kafka"
	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// rawClient sends protocol requests as a hostile client would, anonymous
// or with an API key as the SASL/PLAIN password.
func rawClient(t *testing.T, addr, key string) *kgo.Client {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(0)}
	if key != "" {
		opts = append(opts, kgo.SASL(plain.Auth{User: "k", Pass: key}.AsMechanism()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func apiKey(t *testing.T, s *apptest.Server, name string) string {
	t.Helper()
	r := s.Do("POST", "/api/keys", map[string]any{"name": name, "roles": []string{"reader"}}, "admin")
	var k struct{ Key string }
	json.Unmarshal(r.Body, &k)
	return k.Key
}

func commit(t *testing.T, cl *kgo.Client, group, member string, gen int32, offsets map[string]int64) []int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = group, member, gen
	for topic, off := range offsets {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = off
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var codes []int16
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			codes = append(codes, rp.ErrorCode)
		}
	}
	return codes
}

func fetched(t *testing.T, cl *kgo.Client, group, topic string) int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].Offset
}

// Nobody rewrites another identity's group offsets: anonymous commits
// outside a generation are refused, and each key's groups live in a
// namespace of their own.
func TestGroupOffsetsBelongToTheirIdentity(t *testing.T) {
	s, addr := start(t)
	write(t, s, "notes", 3, func(i int) map[string]any { return map[string]any{"text": "n"} })
	owner := rawClient(t, addr, apiKey(t, s, "owner"))
	if codes := commit(t, owner, "billing", "", -1, map[string]int64{"notes": 2}); codes[0] != 0 {
		t.Fatalf("the owner's own commit: %v", codes)
	}
	anon := rawClient(t, addr, "")
	if codes := commit(t, anon, "billing", "", -1, map[string]int64{"notes": 0}); codes[0] != 22 { // ILLEGAL_GENERATION
		t.Errorf("an anonymous commit outside a generation: %v", codes)
	}
	other := rawClient(t, addr, apiKey(t, s, "other"))
	if codes := commit(t, other, "billing", "", -1, map[string]int64{"notes": 0}); codes[0] != 0 {
		t.Errorf("another key's commit to its own billing group: %v", codes)
	}
	if got := fetched(t, owner, "billing", "notes"); got != 2 {
		t.Errorf("the owner's offset is %d, want 2 (another identity changed it)", got)
	}
	if got := fetched(t, anon, "billing", "notes"); got != -1 {
		t.Errorf("anonymous reads the owner's offset: %d", got)
	}
	if got := fetched(t, other, "billing", "notes"); got != 0 {
		t.Errorf("the other key's own group: %d", got)
	}
	// A made-up member and generation are refused.
	if codes := commit(t, anon, "billing", "mantle-nobody", 3, map[string]int64{"notes": 0}); codes[0] != 25 { // UNKNOWN_MEMBER_ID
		t.Errorf("a made-up member: %v", codes)
	}
}

// Commits for topics that do not exist are refused and stored nowhere;
// an identity's groups are capped.
func TestGroupStateIsBounded(t *testing.T) {
	s, addr := start(t)
	cl := rawClient(t, addr, apiKey(t, s, "bulk"))
	fake := map[string]int64{}
	for i := 0; i < 2000; i++ {
		fake[fmt.Sprintf("nope-%d", i)] = 1
	}
	fake["notes"] = 1
	codes := commit(t, cl, "g", "", -1, fake)
	refused := 0
	for _, c := range codes {
		if c == 3 { // UNKNOWN_TOPIC_OR_PARTITION
			refused++
		}
	}
	if refused != 2000 {
		t.Errorf("%d of 2000 unknown topics refused", refused)
	}
	stored, _ := s.App.Engine.Secrets(context.Background(), kafka.KindOffset)
	if len(stored) != 1 {
		t.Errorf("%d offsets stored, want the one of notes", len(stored))
	}
	ok, capped := 0, 0
	for i := 0; i < 120; i++ {
		switch c := commit(t, cl, fmt.Sprintf("g%d", i), "", -1, map[string]int64{"notes": 1})[0]; c {
		case 0:
			ok++
		case 30: // GROUP_AUTHORIZATION_FAILED
			capped++
		default:
			t.Fatalf("group %d: error %d", i, c)
		}
	}
	if ok != 99 || capped != 21 { // g, g0 … g98
		t.Errorf("%d groups accepted and %d refused, want 99 and 21", ok, capped)
	}
}

// A consumer whose API key is revoked is disconnected, and gets nothing
// written after the revocation; reconnecting with the key fails.
func TestRevokedKeyEndsConsumer(t *testing.T) {
	s, addr := start(t)
	kr := s.Do("POST", "/api/keys", map[string]any{"name": "c", "roles": []string{"reader"}}, "admin").JSON()
	write(t, s, "notes", 2, func(i int) map[string]any { return map[string]any{"text": "before"} })
	cl, _ := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("notes"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.SASL(plain.Auth{User: "c", Pass: kr["key"].(string)}.AsMechanism()))
	defer cl.Close()
	if got := poll(t, cl, 2); len(got) != 2 {
		t.Fatalf("before: %d records", len(got))
	}
	if r := s.Do("DELETE", "/api/keys/"+kr["id"].(string), nil, "admin"); r.Status != 204 {
		t.Fatal(r.Status)
	}
	write(t, s, "notes", 3, func(i int) map[string]any { return map[string]any{"text": "after"} })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, r := range fs.Records() {
			t.Fatalf("a record after the revocation: %s", r.Value)
		}
		var authFailed bool
		fs.EachError(func(_ string, _ int32, err error) { authFailed = authFailed || err != nil })
		if authFailed {
			break
		}
	}
}
