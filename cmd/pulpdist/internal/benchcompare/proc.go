package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat:
// 100 on every Linux this runs on (x86-64 and arm64 fix it).
const clockTicks = 100

// proc is a program the harness runs, its output in a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// start runs bin with env (added to the harness's own) and args, its
// output going to logDir/name.log.
func start(name, logDir, bin string, env []string, args ...string) (*proc, error) {
	log, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(context.Background(), bin, args...) // ended by stop, not by a context
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: log, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// stop asks the program to end (SIGTERM), and kills it after a while.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // it may have ended already
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		p.done <- <-p.done
	}
	_ = p.log.Close()
}

// exited reports the program's end, if it ended.
func (p *proc) exited() error {
	select {
	case err := <-p.done:
		p.done <- err
		return fmt.Errorf("%s exited: %w (see %s)", p.name, err, p.log.Name())
	default:
		return nil
	}
}

// cpu is the CPU time the program and its reaped children used so far.
func (p *proc) cpu() (time.Duration, error) { return cpuOf(p.cmd.Process.Pid) }

// cpuOf reads utime, stime, cutime and cstime of a process from
// /proc/<pid>/stat: its own CPU and that of the children it waited for.
func cpuOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	return parseStat(string(b))
}

// parseStat sums fields 14–17 of a /proc/<pid>/stat line. The command
// name (field 2) is in parentheses and may hold spaces: fields are
// counted after its closing parenthesis.
func parseStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): fields 14..17 are f[11..14].
	if len(f) < 15 {
		return 0, fmt.Errorf("stat: %d fields", len(f)+2)
	}
	var ticks int64
	for _, v := range f[11:15] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// children counts the living children of a process.
func children(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	return len(strings.Fields(string(b)))
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// until calls f until it returns nil, ctx ends or timeout passes.
func until(ctx context.Context, timeout time.Duration, what string, f func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s: %w", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// dialable waits until a TCP port accepts connections.
func dialable(ctx context.Context, port int) error {
	return until(ctx, 30*time.Second, fmt.Sprintf("port %d", port), func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// runCmd runs a program to its end and returns its output, or an error
// quoting its end.
func runCmd(ctx context.Context, dir, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := string(out)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return out, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, tail)
	}
	return out, nil
}

// quiesce flushes dirty pages to disk and waits until the machine is
// nearly idle (at most quietBusy of its CPU busy over quietWindow), at
// most quietMax. Both tools are measured from a quiet machine: the
// write-back of what the setup wrote (64 sites' copies of a corpus are
// gigabytes), or the end of the setup's own processes, would otherwise
// share the CPUs and their caches with the measured update and inflate
// its CPU seconds by a varying amount. A run goes on when the machine
// does not become quiet; the log says so, naming what (the measurement
// about to start).
func quiesce(ctx context.Context, what string) {
	if !quiet(ctx) {
		log.Printf("the machine did not become quiet before the %s: its figures may be high", what)
	}
}

// quiet is quiesce's wait: whether the machine became quiet.
func quiet(ctx context.Context) bool {
	syscall.Sync()
	deadline := time.Now().Add(quietMax)
	prev, err := cpuStat()
	if err != nil {
		return false
	}
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(quietWindow):
		}
		cur, err := cpuStat()
		if err != nil {
			return false
		}
		if total := cur.total - prev.total; total > 0 && float64(cur.busy-prev.busy)/float64(total) <= quietBusy {
			return true
		}
		prev = cur
	}
	return false
}

const (
	quietBusy   = 0.10
	quietWindow = time.Second
	quietMax    = time.Minute
)

// cpuTimes are the machine's CPU times from /proc/stat, in ticks: busy
// (user, nice, system, irq, softirq, steal) and total (with idle and
// iowait).
type cpuTimes struct{ busy, total int64 }

func cpuStat() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseCPULine(line)
}

// parseCPULine reads the first line of /proc/stat: "cpu" and the times
// user nice system idle iowait irq softirq steal (guest times are in user).
func parseCPULine(line string) (cpuTimes, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: unexpected line %q", line)
	}
	var t cpuTimes
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: %w", err)
		}
		t.total += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
	}
	return t, nil
}
