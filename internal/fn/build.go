package fn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Source reads a function's module: a .wasm file as it is, or a folder
// of Go source built with the local Go toolchain for GOOS=wasip1
// GOARCH=wasm (as a reactor with -buildmode=c-shared, or as a command).
// The Go build cache makes an unchanged folder quick to rebuild.
func Source(ctx context.Context, path string, style Style) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	if !fi.IsDir() {
		if !strings.HasSuffix(path, ".wasm") {
			return nil, fmt.Errorf("module %s: give a .wasm file or a folder of Go source", path)
		}
		return os.ReadFile(path)
	}
	return BuildGo(ctx, path, style)
}

// BuildGo builds the Go main package in dir for wasip1.
func BuildGo(ctx context.Context, dir string, style Style) ([]byte, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("module %s is Go source, and building it needs the Go toolchain on PATH (or give a .wasm file)", dir)
	}
	out, err := os.CreateTemp("", "mantle-fn-*.wasm")
	if err != nil {
		return nil, err
	}
	out.Close()
	defer os.Remove(out.Name())
	args := []string{"build", "-o", out.Name(), "-trimpath"}
	if style != Command {
		args = append(args, "-buildmode=c-shared")
	}
	cmd := exec.CommandContext(ctx, gobin, append(args, ".")...)
	cmd.Dir = dir
	cmd.Env = buildEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("module %s: go build failed:\n%s", dir, msg)
	}
	b, err := os.ReadFile(out.Name())
	if err == nil && len(b) == 0 {
		err = errors.New("go build wrote nothing")
	}
	return b, err
}

// buildEnv is the environment less what must not reach a wasm build
// (GOFLAGS=-race, a host GOOS), plus the target.
func buildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOOS", "GOARCH", "GOFLAGS", "CGO_ENABLED", "GOEXPERIMENT":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
}
