package awstest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepoRoot(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Errorf("repoRoot() = %s, which has no go.mod: %v", root, err)
	}
	if wd, _ := os.Getwd(); !strings.HasPrefix(wd, root) {
		t.Errorf("repoRoot() = %s is not above the working directory %s", root, wd)
	}
}

func TestVersitygwBinaryFromEnv(t *testing.T) {
	t.Setenv("VERSITYGW_BIN", filepath.Join(t.TempDir(), "nope"))
	_, err := versitygwBinary(context.Background())
	if err == nil || !strings.Contains(err.Error(), "VERSITYGW_BIN") || !strings.Contains(err.Error(), "make tools") {
		t.Errorf("missing $VERSITYGW_BIN: err = %v, want it named with the fix", err)
	}

	fake := filepath.Join(t.TempDir(), "versitygw")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VERSITYGW_BIN", fake)
	if got, err := versitygwBinary(context.Background()); err != nil || got != fake {
		t.Errorf("versitygwBinary() = %q, %v; want %q", got, err, fake)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := &tailBuffer{max: 8}
	b.Write([]byte("0123456789"))
	b.Write([]byte("ab"))
	if got := b.String(); got != "456789ab" {
		t.Errorf("tail = %q, want %q", got, "456789ab")
	}
}
