//go:build !race

package fntest

const raceEnabled = false
