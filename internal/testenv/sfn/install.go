package sfn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/proc"
)

// nodeFolder is the npm project of the interpreter, relative to the module root.
const nodeFolder = "internal/testenv/sfn/node"

// minNodeMajor is the oldest Node.js that runs aws-local-stepfunctions 3 with
// run.mjs's Promise.withResolvers polyfill (it needs AbortSignal.any).
const minNodeMajor = 20

// Packages that EnsureInstalled checks for in node_modules.
var requiredPackages = []string{"aws-local-stepfunctions", "asl-validator"}

// NodeDir returns the folder of run.mjs and package.json.
func NodeDir() (string, error) {
	root, err := proc.ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("sfn: %w", err)
	}
	dir := filepath.Join(root, filepath.FromSlash(nodeFolder))
	if _, err := os.Stat(filepath.Join(dir, "run.mjs")); err != nil {
		return "", fmt.Errorf("sfn: the state machine runner is missing: %w", err)
	}
	return dir, nil
}

var (
	installMu sync.Mutex
	nodeOK    bool // node was found and is recent enough; guarded by installMu
)

// EnsureInstalled checks that node (20 or later) and, if needed, npm are on
// PATH, and runs `npm ci --no-audit --no-fund` in NodeDir when node_modules
// lacks the pinned packages or is older than package-lock.json. npm needs the
// registry then. Concurrent callers, in this process or in other test
// binaries, wait for one install.
func EnsureInstalled(ctx context.Context) error {
	dir, err := NodeDir()
	if err != nil {
		return err
	}
	installMu.Lock()
	defer installMu.Unlock()
	if !nodeOK {
		if err := checkNode(ctx); err != nil {
			return err
		}
		nodeOK = true
	}
	if installed(dir) == nil {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("sfn: %s/node_modules needs installing but npm is not on PATH: install Node.js %d or later with npm, then run make node-tools", nodeFolder, minNodeMajor)
	}

	// Other test binaries may install at the same time: one does, the others
	// wait and then find node_modules.
	root, err := proc.ModuleRoot()
	if err != nil {
		return fmt.Errorf("sfn: %w", err)
	}
	lockDir := filepath.Join(root, "bin")
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return fmt.Errorf("sfn: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(lockDir, ".sfn-npm-ci.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("sfn: open the npm install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("sfn: lock the npm install: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if installed(dir) == nil {
		return nil
	}

	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sfn: npm ci in %s failed: %w\n%s", nodeFolder, err, strings.TrimSpace(out.String()))
	}
	if err := installed(dir); err != nil {
		return fmt.Errorf("sfn: npm ci in %s succeeded but %w", nodeFolder, err)
	}
	return nil
}

// installed reports why node_modules in dir needs (re)installing, or nil.
func installed(dir string) error {
	for _, pkg := range requiredPackages {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			return fmt.Errorf("node_modules/%s is missing", pkg)
		}
	}
	// npm writes node_modules/.package-lock.json at the end of an install.
	lockInfo, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return err
	}
	hidden, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil {
		return errors.New("node_modules/.package-lock.json is missing")
	}
	if hidden.ModTime().Before(lockInfo.ModTime()) {
		return errors.New("node_modules is older than package-lock.json")
	}
	return nil
}

// checkNode checks that node is on PATH and at least minNodeMajor.
func checkNode(ctx context.Context) error {
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("sfn: node is not on PATH: install Node.js %d or later (the local Step Functions interpreter is an npm package)", minNodeMajor)
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return fmt.Errorf("sfn: %s --version: %w", node, err)
	}
	version := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(version, "v"), ".")
	if n, err := strconv.Atoi(major); err != nil || n < minNodeMajor {
		return fmt.Errorf("sfn: %s is Node.js %s: the local Step Functions interpreter needs %d or later", node, version, minNodeMajor)
	}
	return nil
}
