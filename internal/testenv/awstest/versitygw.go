package awstest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/proc"
)

// VersitygwVersion is the versitygw release StartS3 installs when no binary is
// found. Keep it equal to VERSITYGW_VERSION in the Makefile.
const VersitygwVersion = "v1.8.0"

const versitygwModule = "github.com/versity/versitygw/cmd/versitygw"

// versitygwBinary returns the path of a versitygw executable: $VERSITYGW_BIN if
// set, else <repo root>/bin/versitygw, which it installs first when missing.
func versitygwBinary(ctx context.Context) (string, error) {
	if bin := os.Getenv("VERSITYGW_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("awstest: VERSITYGW_BIN=%s: %w: unset it to let the tests install versitygw, or run `make tools`", bin, err)
		}
		return bin, nil
	}
	root, err := proc.ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("awstest: %w, or set VERSITYGW_BIN to a versitygw binary", err)
	}
	binDir := filepath.Join(root, "bin")
	bin := filepath.Join(binDir, "versitygw")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("awstest: create %s for versitygw: %w", binDir, err)
	}

	// Parallel test binaries (one per package) may all get here: one installs,
	// the others wait on the lock and then find the binary.
	lock, err := os.OpenFile(filepath.Join(binDir, ".versitygw.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("awstest: open versitygw install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("awstest: lock versitygw install: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if isExecutable(bin) {
		return bin, nil
	}

	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", versitygwModule+"@"+VersitygwVersion)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOBIN="+binDir, "GOFLAGS=-mod=mod")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("awstest: go install %s@%s: %w\n%s\nrun `make tools` or set VERSITYGW_BIN to a versitygw binary",
			versitygwModule, VersitygwVersion, err, out.Bytes())
	}
	if !isExecutable(bin) {
		return "", fmt.Errorf("awstest: go install succeeded but %s is missing: set VERSITYGW_BIN to a versitygw binary", bin)
	}
	return bin, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
