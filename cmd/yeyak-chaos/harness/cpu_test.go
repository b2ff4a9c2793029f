package harness

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestCPUAccounting: a child that spins shows up in its parent's tree, and
// this process's own CPU time grows with work.
func TestCPUAccounting(t *testing.T) {
	before := SelfCPU()
	deadline := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	if SelfCPU()-before < 50*time.Millisecond {
		t.Errorf("200 ms of spinning added %v of CPU time", SelfCPU()-before)
	}
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// Poll until the child's loop has used measurable CPU.
	end := time.Now().Add(30 * time.Second)
	for {
		own, err := ProcessCPU(os.Getpid())
		if err != nil || own <= 0 {
			t.Fatalf("own CPU %v %v", own, err)
		}
		tree, err := TreeCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if tree-own >= 100*time.Millisecond {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("the spinning child never showed in the tree: tree %v, own %v", tree, own)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
