package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a system under test running as a child process, its output in a
// log file.
type child struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error // valid once exited is closed

	stopOnce sync.Once
	stopErr  error
}

// startChild runs argv with env added to ours, stdout and stderr going to
// logPath. The child has its own process group, so that a Ctrl-C in the
// terminal reaches only the driver, which then stops the child in order;
// and it is killed if the driver dies without stopping it.
func startChild(argv, env []string, logPath string) (*child, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the log: %w", err)
	}
	defer log.Close() // the child has its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	c := &child{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// waitReady calls ready every 100 ms until it succeeds, the child exits, or
// timeout passes.
func (c *child) waitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("exited while starting (%v); see %s", c.waitErr, c.logPath)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s (last: %v); see %s", timeout, last, c.logPath)
		case <-tick.C:
		}
		probeCtx, cancelProbe := context.WithTimeout(ctx, 2*time.Second)
		last = ready(probeCtx)
		cancelProbe()
		if last == nil {
			return nil
		}
	}
}

// stop sends SIGTERM and waits up to grace for the child to exit, then kills
// it. It reports an exit that was not clean, or a child that had already
// died. Calling it again returns the first answer.
func (c *child) stop(grace time.Duration) error {
	c.stopOnce.Do(func() { c.stopErr = c.terminate(grace) })
	return c.stopErr
}

func (c *child) terminate(grace time.Duration) error {
	select {
	case <-c.exited:
		return fmt.Errorf("had exited before it was stopped (%v); see %s", c.waitErr, c.logPath)
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending SIGTERM: %w", err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-c.exited:
		if c.waitErr != nil {
			return fmt.Errorf("exit after SIGTERM: %w; see %s", c.waitErr, c.logPath)
		}
		return nil
	case <-timer.C:
		_ = c.cmd.Process.Kill() // fails only if it exited meanwhile
		<-c.exited
		return fmt.Errorf("did not stop within %s of SIGTERM, killed; see %s", grace, c.logPath)
	}
}

// logSummary is what a child's log says went wrong.
type logSummary struct {
	Errors       int    `json:"errors"`
	Warnings     int    `json:"warnings"`
	FirstError   string `json:"first_error,omitempty"` // excerpts of the lines
	FirstWarning string `json:"first_warning,omitempty"`
}

// readLog counts the lines of the child's log at level error and warn, in
// Benthos's logfmt or JSON logs, and keeps the first of each.
func (c *child) readLog() (logSummary, error) {
	var s logSummary
	f, err := os.Open(c.logPath)
	if err != nil {
		return s, fmt.Errorf("reading the log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "level=error"), strings.Contains(line, `"level":"error"`):
			if s.Errors++; s.FirstError == "" {
				s.FirstError = excerpt(line)
			}
		case strings.Contains(line, "level=warn"), strings.Contains(line, `"level":"warn`):
			if s.Warnings++; s.FirstWarning == "" {
				s.FirstWarning = excerpt(line)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("reading %s: %w", c.logPath, err)
	}
	return s, nil
}

func excerpt(line string) string {
	const limit = 300
	if len(line) <= limit {
		return line
	}
	return line[:limit] + "…"
}
