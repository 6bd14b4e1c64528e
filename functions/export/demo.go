//go:build !lambda.norpc

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
)

// This file is the --demo wiring. The Lambda build (-tags lambda.norpc)
// leaves it out, so the deployed function never links the WorkOS fake.

// demoDataset is the built-in fake's dataset for --demo: a few directories and
// a few thousand users.
var demoDataset = workostest.Config{Seed: 1, Directories: 4, UsersPerDirectory: 1200, GroupsPerDirectory: 12}

// defaultDemoFolder is where the demo writes unless told otherwise.
const defaultDemoFolder = "out"

// startDemo starts the built-in WorkOS fake and points env at it. The demo
// writes fake data, so it writes only to a local folder: it refuses an s3://
// destination, and a folder that holds a snapshot that is not demo data.
func startDemo(lookup func(string) string, env map[string]string, stderr io.Writer, days int) (demoFake, error) {
	dest := lookup("EXPORT_DESTINATION")
	if dest == "" {
		dest = defaultDemoFolder
	}
	if strings.Contains(dest, "://") {
		return demoFake{}, fmt.Errorf("export: --demo writes the built-in fake's made-up data, so it writes only to a local folder, not to %s (set by --destination or EXPORT_DESTINATION): pass --destination with a folder, or unset EXPORT_DESTINATION to use ./%s", dest, defaultDemoFolder)
	}
	if err := checkDemoFolder(dest); err != nil {
		return demoFake{}, err
	}
	env["EXPORT_DESTINATION"] = dest
	cfg := demoDataset
	// The fake's clock starts days ago and ends at about now, so the export's
	// retention checks (real time) and the events' times agree.
	cfg.Now = time.Now().UTC().Add(-time.Duration(days) * 24 * time.Hour)
	fake, err := workostest.New(cfg)
	if err != nil {
		return demoFake{}, fmt.Errorf("export: start the WorkOS fake: %w", err)
	}
	base, err := fake.Start("127.0.0.1:0")
	if err != nil {
		fake.Close()
		return demoFake{}, fmt.Errorf("export: start the WorkOS fake: %w", err)
	}
	env["WORKOS_BASE_URL"] = base
	env["WORKOS_API_KEY"] = "sk_test_default"
	env["WORKOS_API_KEY_SECRET_ID"] = ""
	env["WORKOS_RATE_LIMIT_DIRECTORY_USERS"] = "0" // the demo fake does not enforce limits
	env["WORKOS_RATE_LIMIT_GLOBAL"] = "0"
	fmt.Fprintf(stderr, "demo: built-in WorkOS fake at %s with %d directories x %d users -> %s\n", base, demoDataset.Directories, demoDataset.UsersPerDirectory, dest)
	next := func() int { return fake.AdvanceWith(24*time.Hour, workostest.AdvanceOptions{Churn: 0.01}).Events }
	return demoFake{stop: func() { _ = fake.Close() }, nextDay: next, now: fake.Now}, nil
}
