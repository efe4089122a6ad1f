//go:build !unix

package app

import "log/slog"

// connCap keeps the configured cap where the descriptor limit is not read.
func connCap(want int, _ *slog.Logger) int { return want }
