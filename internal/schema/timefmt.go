package schema

import "time"

// appendTime writes t in TimeFormat without going through time.Format,
// which a list of records does hundreds of times per request.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeFormat)
	}
	b = appendInt(b, year, 4)
	b = append(b, '-')
	b = appendInt(b, int(month), 2)
	b = append(b, '-')
	b = appendInt(b, day, 2)
	b = append(b, 'T')
	b = appendInt(b, hour, 2)
	b = append(b, ':')
	b = appendInt(b, min, 2)
	b = append(b, ':')
	b = appendInt(b, sec, 2)
	b = append(b, '.')
	b = appendInt(b, t.Nanosecond(), 9)
	return append(b, 'Z')
}

func appendInt(b []byte, v, width int) []byte {
	var buf [9]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[:width]...)
}

// ParseTime reads a time written in TimeFormat quickly, falling back to
// RFC 3339 for anything else. The result is in UTC.
func ParseTime(s string) (time.Time, error) {
	if len(s) == len(TimeFormat) && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
		s[16] == ':' && s[19] == '.' && s[29] == 'Z' {
		year, ok1 := digits(s[0:4])
		month, ok2 := digits(s[5:7])
		day, ok3 := digits(s[8:10])
		hour, ok4 := digits(s[11:13])
		min, ok5 := digits(s[14:16])
		sec, ok6 := digits(s[17:19])
		nsec, ok7 := digits(s[20:29])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && month >= 1 && month <= 12 &&
			day >= 1 && day <= 31 && hour < 24 && min < 60 && sec < 60 {
			t := time.Date(year, time.Month(month), day, hour, min, sec, nsec, time.UTC)
			if t.Day() == day { // rejects 2024-02-30
				return t, nil
			}
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
