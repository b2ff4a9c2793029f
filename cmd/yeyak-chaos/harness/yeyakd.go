package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildYeyakd builds cmd/yeyakd into dir and returns the binary's path.
func BuildYeyakd(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "yeyakd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/yeyak/yeyak/cmd/yeyakd")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build yeyakd: %w\n%s", err, out)
	}
	return bin, nil
}

// YeyakdConfig says how to run yeyakd.
type YeyakdConfig struct {
	// Bin is the yeyakd binary. Required.
	Bin string
	// Args are the flags beyond --listen and --ops-listen.
	Args []string
	// Dir is the working directory; yeyakd's output goes to Dir/yeyakd.log.
	// Required.
	Dir string
	// Ready bounds the wait for /readyz after a start. 0 means 90 s.
	Ready time.Duration
	// Clock, when set, is yeyakd's clock: each start (and restart) passes
	// --now with its current time (yeyakd allows it with --demo only).
	Clock *Clock
}

// Yeyakd is a yeyakd process on loopback ports of its own. Restart keeps
// the ports and flags.
type Yeyakd struct {
	cfg       YeyakdConfig
	port, ops int
	logPath   string
	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{}
	exitErr   error
	starts    int
}

// StartYeyakd starts yeyakd on free loopback ports and waits until its
// /readyz answers 200.
func StartYeyakd(ctx context.Context, cfg YeyakdConfig) (*Yeyakd, error) {
	if cfg.Bin == "" || cfg.Dir == "" {
		return nil, errors.New("harness: YeyakdConfig needs Bin and Dir")
	}
	if cfg.Ready <= 0 {
		cfg.Ready = 90 * time.Second
	}
	// The process runs in Dir: a relative binary path would resolve there.
	bin, err := filepath.Abs(cfg.Bin)
	if err != nil {
		return nil, err
	}
	cfg.Bin = bin
	y := &Yeyakd{cfg: cfg, logPath: filepath.Join(cfg.Dir, "yeyakd.log")}
	if y.port, err = FreePort(); err != nil {
		return nil, err
	}
	if y.ops, err = FreePort(); err != nil {
		return nil, err
	}
	return y, y.Start(ctx)
}

// URL is the public listener's base URL.
func (y *Yeyakd) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", y.port) }

// OpsURL is the ops listener's base URL.
func (y *Yeyakd) OpsURL() string { return fmt.Sprintf("http://127.0.0.1:%d", y.ops) }

// Start starts the process (again) and waits until it is ready.
func (y *Yeyakd) Start(ctx context.Context) error {
	y.mu.Lock()
	if y.cmd != nil {
		y.mu.Unlock()
		return errors.New("harness: yeyakd is running")
	}
	logf, err := os.OpenFile(y.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		y.mu.Unlock()
		return err
	}
	y.starts++
	fmt.Fprintf(logf, "\n=== harness: start %d ===\n", y.starts)
	args := append([]string{"--listen", fmt.Sprintf("127.0.0.1:%d", y.port), "--ops-listen", fmt.Sprintf("127.0.0.1:%d", y.ops)}, y.cfg.Args...)
	if y.cfg.Clock != nil {
		args = append(args, "--now", y.cfg.Clock.Flag())
	}
	cmd := exec.Command(y.cfg.Bin, args...)
	cmd.Dir = y.cfg.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		y.mu.Unlock()
		return fmt.Errorf("start yeyakd: %w", err)
	}
	exited := make(chan struct{})
	y.cmd, y.exited = cmd, exited
	y.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		y.mu.Lock()
		y.exitErr = err
		y.mu.Unlock()
		close(exited)
	}()
	return y.waitReady(ctx, exited)
}

func (y *Yeyakd) waitReady(ctx context.Context, exited chan struct{}) error {
	deadline := time.Now().Add(y.cfg.Ready)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(y.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			y.forget()
			return fmt.Errorf("yeyakd exited before ready: %v\n%s", y.exitErr, y.LogTail(30))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("yeyakd not ready after %v\n%s", y.cfg.Ready, y.LogTail(30))
		}
	}
}

func (y *Yeyakd) forget() {
	y.mu.Lock()
	y.cmd = nil
	y.mu.Unlock()
}

// Kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (y *Yeyakd) Kill() error { return y.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM and waits up to grace for a clean exit, then kills.
func (y *Yeyakd) Stop(grace time.Duration) error {
	err := y.signal(syscall.SIGTERM, grace)
	if err != nil {
		_ = y.Kill()
	}
	return err
}

func (y *Yeyakd) signal(sig syscall.Signal, wait time.Duration) error {
	y.mu.Lock()
	cmd, exited := y.cmd, y.exited
	y.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-exited:
		y.forget()
		if sig == syscall.SIGTERM && y.exitErr != nil {
			return fmt.Errorf("yeyakd exit after SIGTERM: %w", y.exitErr)
		}
		return nil
	case <-time.After(wait):
		return fmt.Errorf("yeyakd still running %v after %v", wait, sig)
	}
}

// Running reports whether the process is up.
func (y *Yeyakd) Running() bool {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.cmd == nil {
		return false
	}
	select {
	case <-y.exited:
		return false
	default:
		return true
	}
}

// LogTail returns the last n lines of yeyakd's output.
func (y *Yeyakd) LogTail(n int) string {
	b, err := os.ReadFile(y.logPath)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// LogContains reports whether yeyakd's output contains s.
func (y *Yeyakd) LogContains(s string) bool {
	b, err := os.ReadFile(y.logPath)
	return err == nil && strings.Contains(string(b), s)
}

// Pid returns the running process's id, or 0.
func (y *Yeyakd) Pid() int {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.cmd == nil || y.cmd.Process == nil {
		return 0
	}
	return y.cmd.Process.Pid
}
