package schema

import (
	"testing"
	"time"
)

func TestTimeFormatRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 25, 16, 49, 4, 440231292, time.FixedZone("x", 3600)),
		time.Now(),
	} {
		got := string(appendTime(nil, tm))
		if want := tm.UTC().Format(TimeFormat); got != want {
			t.Errorf("appendTime %v = %s, want %s", tm, got, want)
		}
		back, err := ParseTime(got)
		if err != nil || !back.Equal(tm) {
			t.Errorf("ParseTime(%s) = %v, %v", got, back, err)
		}
	}
	for _, bad := range []string{"2024-02-30T00:00:00.000000000Z", "2024-13-01T00:00:00.000000000Z", "x"} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
	if tm, err := ParseTime("2024-05-01T12:00:00+02:00"); err != nil || tm.Hour() != 10 {
		t.Errorf("RFC 3339 fallback: %v %v", tm, err)
	}
}

func FuzzParseTime(f *testing.F) {
	f.Add("2024-02-29T23:59:59.999999999Z")
	f.Add("2024-05-01T12:00:00+02:00")
	f.Fuzz(func(t *testing.T, s string) {
		fast, err1 := ParseTime(s)
		slow, err2 := time.Parse(time.RFC3339Nano, s)
		if (err1 == nil) != (err2 == nil) || (err1 == nil && !fast.Equal(slow)) {
			t.Fatalf("%q: fast %v %v, time.Parse %v %v", s, fast, err1, slow, err2)
		}
	})
}
