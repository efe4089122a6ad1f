//go:build !linux

package app

import "testing"

func mapResident(t *testing.T, n int) []byte { return make([]byte, n) }
