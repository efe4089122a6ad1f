//go:build race

package fntest

const raceEnabled = true
