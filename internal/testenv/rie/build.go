package rie

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/dsync-export/dsync-export/internal/testenv/proc"
)

// EmulatorPackage is the import path of the emulator's command, pinned by the
// tool directive of go.mod.
const EmulatorPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// EmulatorName is the file name BuildEmulator writes in its output folder.
const EmulatorName = "aws-lambda-rie"

// BootstrapName is the file name of a Lambda custom runtime executable.
const BootstrapName = "bootstrap"

// EchoPackage is this package's test function (testdata/echo): it answers
// each invocation with its input and the facts of its process and invocation.
const EchoPackage = "./internal/testenv/rie/testdata/echo"

// BuildEcho builds the emulator (cached in <module>/bin) and the echo test
// function, into a new temporary folder that the caller removes
// (filepath.Dir(bootstrap)).
func BuildEcho(ctx context.Context) (emulator, bootstrap string, err error) {
	root, err := proc.ModuleRoot()
	if err != nil {
		return "", "", fmt.Errorf("rie: %w", err)
	}
	if emulator, err = BuildEmulator(ctx, filepath.Join(root, "bin")); err != nil {
		return "", "", err
	}
	dir, err := os.MkdirTemp("", "rie-echo-")
	if err != nil {
		return "", "", fmt.Errorf("rie: %w", err)
	}
	if bootstrap, err = BuildBootstrap(ctx, EchoPackage, dir); err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	return emulator, bootstrap, nil
}

// BuildBootstrap builds the main package pkg as a Lambda bootstrap for the
// host's GOOS and GOARCH, the way the Makefile builds it for Lambda:
// CGO_ENABLED=0, -tags lambda.norpc and -trimpath. A pkg starting with "./"
// is relative to the module root. It writes outDir/bootstrap (creating
// outDir) and returns its absolute path. The file is replaced atomically, so
// a running copy is never overwritten mid-way.
func BuildBootstrap(ctx context.Context, pkg, outDir string) (string, error) {
	out, err := filepath.Abs(filepath.Join(outDir, BootstrapName))
	if err != nil {
		return "", fmt.Errorf("rie: %w", err)
	}
	if err := goBuild(ctx, pkg, out, "-tags", "lambda.norpc"); err != nil {
		return "", err
	}
	return out, nil
}

// BuildEmulator builds the Runtime Interface Emulator into
// outDir/aws-lambda-rie and returns its absolute path. An existing binary
// newer than go.mod is reused: the emulator's version is pinned there.
func BuildEmulator(ctx context.Context, outDir string) (string, error) {
	out, err := filepath.Abs(filepath.Join(outDir, EmulatorName))
	if err != nil {
		return "", fmt.Errorf("rie: %w", err)
	}
	root, err := proc.ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("rie: %w", err)
	}
	if fresh(out, filepath.Join(root, "go.mod")) {
		return out, nil
	}
	if err := goBuild(ctx, EmulatorPackage, out); err != nil {
		return "", err
	}
	return out, nil
}

// fresh reports whether file exists and is newer than dep.
func fresh(file, dep string) bool {
	fi, err := os.Stat(file)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	di, err := os.Stat(dep)
	if err != nil {
		return false
	}
	return fi.ModTime().After(di.ModTime())
}

// goBuild runs go build for the host in the module root and moves the result
// to out atomically. Every build uses CGO_ENABLED=0 and -trimpath, so the
// emulator and the bootstraps share their compiled standard library in the
// build cache.
func goBuild(ctx context.Context, pkg, out string, flags ...string) error {
	root, err := proc.ModuleRoot()
	if err != nil {
		return fmt.Errorf("rie: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("rie: %w", err)
	}
	// Build into a private folder beside out, then rename: concurrent builds
	// (parallel test packages) never see a half-written binary.
	tmpDir, err := os.MkdirTemp(filepath.Dir(out), ".build-*")
	if err != nil {
		return fmt.Errorf("rie: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, filepath.Base(out))

	args := append([]string{"build", "-trimpath", "-o", tmp}, flags...)
	args = append(args, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if errors.Is(err, exec.ErrNotFound) {
			msg = "the go command is not on PATH"
		}
		return fmt.Errorf("rie: go build %s failed: %v: %s", pkg, err, msg)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("rie: %w", err)
	}
	return nil
}
