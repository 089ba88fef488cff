package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOpenFileLimitRaisedAndSized: serve started with a soft
// RLIMIT_NOFILE below its hard limit runs with the soft limit raised to
// the hard one (README.md, "Limits"), and its start-up line reports the
// host-wide cap of origin requests sized from the raised limit:
// (nofile - 2*(max_concurrent_sandboxes + max_waiting_sandboxes) - 256) / 2.
func TestOpenFileLimitRaisedAndSized(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prlimit (util-linux) is needed to start serve with a lowered open-file limit")
		}
		t.Skip("prlimit (util-linux) not found")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	const soft = 512
	if lim.Max <= soft || lim.Max > 1<<31 {
		t.Skipf("hard open-file limit %d leaves nothing to raise", lim.Max)
	}
	tmp := t.TempDir()
	manifest := tmp + "/host.toml"
	if err := os.WriteFile(manifest, []byte("[edgehost]\nmax_concurrent_sandboxes = 8\nmax_waiting_sandboxes = 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServeProcUnder(t, []string{prlimit, fmt.Sprintf("--nofile=%d:%d", soft, lim.Max), "--"},
		"-C", manifest, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", tmp+"/data")

	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Max open files\s+(\d+)\s+(\d+)`).FindSubmatch(limits)
	if m == nil {
		t.Fatalf("no open-file line in /proc/PID/limits:\n%s", limits)
	}
	gotSoft, _ := strconv.ParseUint(string(m[1]), 10, 64)
	if gotSoft != lim.Max {
		t.Errorf("serve runs with a soft open-file limit of %d, want it raised from %d to the hard limit %d", gotSoft, soft, lim.Max)
	}

	want := (int64(lim.Max) - 2*(8+4) - 256) / 2
	re := regexp.MustCompile(`max_origin_requests=(\d+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(p.log.String()); m != nil {
			if m[1] != strconv.FormatInt(want, 10) {
				t.Errorf("start-up line says max_origin_requests=%s, want %d for a hard limit of %d", m[1], want, lim.Max)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no max_origin_requests in serve's log:\n%s", strings.TrimSpace(p.log.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
