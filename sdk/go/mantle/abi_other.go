//go:build !wasip1

package mantle

import (
	"fmt"
	"io"
	"os"
)

// Outside WebAssembly there is no host: host calls fail with ErrNoHost,
// the invocation is read from stdin and the result written to stdout, so a
// command built for the host can be tried by hand.

func readInput() []byte {
	b, _ := io.ReadAll(os.Stdin)
	return b
}

func writeOutput(b []byte) error {
	_, err := os.Stdout.Write(append(b, '\n'))
	return err
}

func hostCall(string, []byte) ([]byte, error) { return nil, ErrNoHost }

func hostLog(level int32, msg string) { fmt.Fprintf(os.Stderr, "[%d] %s\n", level, msg) }
