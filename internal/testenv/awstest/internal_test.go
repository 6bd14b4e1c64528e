package awstest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
