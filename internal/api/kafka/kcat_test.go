package kafka_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/api/kafka"
	"github.com/mantlehq/mantle/internal/testenv"
)

// kcat (librdkafka, the Debian package) reads the log from the start and
// exits at its end (-e), printing each record as JSON (-J).
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		testenv.SkipOrFail(t, "kcat", "kcat is not installed (apt install kcat)")
	}
	s, addr := start(t)
	seqs := write(t, s, "notes", 12, func(i int) map[string]any { return map[string]any{"text": fmt.Sprint("k", i)} })
	key := s.Do("POST", "/api/keys", map[string]any{"name": "kcat", "roles": []string{"admin"}}, "admin")
	var k struct{ Key string }
	json.Unmarshal(key.Body, &k)
	var everything []int64 // an administrator's key reads every event, audit events included
	for seq := int64(1); seq <= s.LastSeq(); seq++ {
		everything = append(everything, seq)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		topic string
		want  []int64
	}{
		{"anonymous, the notes topic", nil, "notes", seqs},
		{"SASL/PLAIN with an API key, the whole log", []string{"-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN",
			"-X", "sasl.username=kcat", "-X", "sasl.password=" + k.Key}, kafka.LogTopic, everything},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-b", addr, "-C", "-t", tc.topic, "-o", "beginning", "-e", "-J", "-q"}, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, kcat, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kcat: %v\n%s", err, stderr.String())
			}
			var offsets []int64
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var m struct {
					Offset  int64
					Key     string
					Payload string
					Headers []string
				}
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatalf("kcat printed %q: %v", sc.Text(), err)
				}
				offsets = append(offsets, m.Offset)
				h := strings.Join(m.Headers, ",")
				if !strings.Contains(h, "ce_specversion,1.0") || !strings.Contains(h, fmt.Sprintf("ce_id,%d", m.Offset+1)) {
					t.Errorf("offset %d headers %v", m.Offset, m.Headers)
				}
			}
			var want []int64
			for _, s := range tc.want {
				want = append(want, s-1)
			}
			if fmt.Sprint(offsets) != fmt.Sprint(want) {
				t.Errorf("offsets %v, want %v", offsets, want)
			}
		})
	}
}
