package consumer

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func TestPlan(t *testing.T) {
	daily, _ := cron.ParseStandard("0 3 * * *")
	at := func(s string) time.Time { v, _ := time.ParseInLocation("2006-01-02 15:04", s, time.Local); return v }
	for _, tc := range []struct {
		last, now, missed, next string
	}{
		{"2026-12-01 03:00", "2026-12-01 10:00", "", "2026-12-02 03:00"},                 // ran today: nothing missed
		{"2026-11-28 03:00", "2026-12-01 10:00", "2026-12-01 03:00", "2026-12-02 03:00"}, // three nights down: the last one
		{"2026-11-30 03:00", "2026-12-01 03:00", "2026-12-01 03:00", "2026-12-02 03:00"}, // restarted at the tick: due now
		{"2026-12-01 02:59", "2026-12-01 02:59", "", "2026-12-01 03:00"},                 // started just before it
	} {
		missed, next := plan(daily, at(tc.last), at(tc.now))
		want := time.Time{}
		if tc.missed != "" {
			want = at(tc.missed)
		}
		if !missed.Equal(want) || !next.Equal(at(tc.next)) {
			t.Errorf("last %s now %s: missed %v next %v, want %s and %s", tc.last, tc.now, missed, next, tc.missed, tc.next)
		}
	}
}
