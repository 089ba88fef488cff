package guesttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FastlyCLIDir holds the package.json and package-lock.json that pin
// Fastly's CLI (@fastly/cli on npm), relative to the repository root.
const FastlyCLIDir = "testdata/fastlycli"

// FastlyCLI returns the path of the `fastly` command the lockfile in
// FastlyCLIDir pins, running npm install there first when node_modules is
// missing or holds another version. Errors: ErrNoNode, or npm's output.
func FastlyCLI(ctx context.Context) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, FastlyCLIDir)
	bin := filepath.Join(dir, "node_modules", ".bin", "fastly")
	if npmInstalled(dir, "@fastly/cli", "fastly") {
		return bin, nil
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%w (%s: %v)", ErrNoNode, tool, err)
		}
	}
	unlock, err := lockFile(filepath.Join(dir, ".install.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if !npmInstalled(dir, "@fastly/cli", "fastly") {
		// npm install, not npm ci: the lockfile holds only the
		// linux-x64 build of the CLI's per-platform packages (the registry
		// this project uses serves no other), and npm ci refuses a
		// lockfile without every optional dependency; npm install
		// installs the versions the lockfile pins and leaves it as it is.
		if err := run(ctx, dir, "npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"); err != nil {
			return "", err
		}
	}
	return bin, nil
}

// RequireFastlyCLI is FastlyCLI for a test: without node and npm it skips
// t, except when $CI is "true", when it fails t.
func RequireFastlyCLI(t testing.TB) string {
	t.Helper()
	bin, err := FastlyCLI(context.Background())
	switch {
	case err == nil:
		return bin
	case errors.Is(err, ErrNoNode) && os.Getenv("CI") != "true":
		t.Skipf("skipped: %v", err)
	}
	t.Fatalf("Fastly CLI: %v", err)
	return ""
}
