package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary a child process: its value is the mode,
// the first argument the address to listen on. "serve" answers HTTP until
// SIGTERM and exits 0; "stubborn" ignores SIGTERM; "silent" never listens;
// "crash" exits 3 at once.
const helperEnv = "PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		os.Exit(m.Run())
	}
	wd, _ := os.Getwd()
	fmt.Println("helper", mode, "starting in", wd)
	switch mode {
	case "crash":
		os.Exit(3)
	case "silent":
		select {}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	if mode == "stubborn" {
		signal.Ignore(syscall.SIGTERM)
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	go http.Serve(ln, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	<-sig
	os.Exit(0)
}

// helperSpec returns the Spec of a helper in mode and a free address for it.
func helperSpec(t *testing.T, mode string) (Spec, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := FreeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Name: "helper " + mode, Bin: self, Args: addrs, Env: []string{helperEnv + "=" + mode},
		Log: filepath.Join(t.TempDir(), "logs", mode+".log")}, addrs[0]
}

func TestStartReadyStop(t *testing.T) {
	tests := map[string]struct {
		mode, probe string
		wantStop    string // "" for a clean stop
	}{
		"http probe, clean stop": {mode: "serve", probe: "http"},
		"tcp probe, clean stop":  {mode: "serve", probe: "tcp"},
		"killed after the grace": {mode: "stubborn", probe: "tcp", wantStop: "helper stubborn did not exit within 2s of SIGTERM; killed"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s, addr := helperSpec(t, tt.mode)
			s.Dir = filepath.Dir(s.Log)
			probe := TCP(addr)
			if tt.probe == "http" {
				probe = HTTP("http://" + addr + "/")
			}
			p, err := StartReady(context.Background(), s, 30*time.Second, probe)
			if err != nil {
				t.Fatal(err)
			}
			if m, err := p.Memory(); err != nil || p.PID() <= 0 || m.RSS == 0 {
				t.Errorf("PID %d, Memory() = %+v, %v; want a running process", p.PID(), m, err)
			}
			gotStop := ""
			if err := p.Stop(2 * time.Second); err != nil {
				gotStop = err.Error()
			}
			if gotStop != tt.wantStop {
				t.Errorf("Stop() = %q, want %q", gotStop, tt.wantStop)
			}
			if !p.Exited() || !strings.Contains(p.LogTail(), "helper "+tt.mode+" starting in "+s.Dir) {
				t.Errorf("exited %v, log %q; want an exited process that logged", p.Exited(), p.LogTail())
			}
			if err := p.Stop(time.Second); err == nil || !strings.Contains(err.Error(), "had already exited") {
				t.Errorf("second Stop() = %v, want already exited", err)
			}
		})
	}
}

func TestWaitReadyFails(t *testing.T) {
	tests := map[string]struct{ mode, want string }{
		"never ready":   {"silent", "helper silent not ready after 300ms (last probe: probe "},
		"exits at once": {"crash", "helper crash exited before becoming ready (exit status 3); log tail:\nhelper crash starting in "},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s, addr := helperSpec(t, tt.mode)
			start := time.Now()
			_, err := StartReady(context.Background(), s, 300*time.Millisecond, TCP(addr))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("StartReady() = %v, want it to contain %q", err, tt.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("StartReady took %v, want it to give up soon after 300ms", d)
			}
		})
	}
}

func TestNodeKillRestart(t *testing.T) {
	s, addr := helperSpec(t, "serve")
	dir := filepath.Join(t.TempDir(), "n0")
	n := &Node{Spec: s, Dir: dir, Probe: TCP(addr), Timeout: 30 * time.Second}
	g := Group{n}
	t.Cleanup(func() { _ = g.Stop(10 * time.Second) })
	for start := 1; start <= 2; start++ {
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		if err := n.WaitReady(context.Background()); err != nil {
			t.Fatal(err)
		}
		if log := filepath.Join(dir, fmt.Sprintf("n0.%d.log", start)); n.Spec.Log != log || !n.Running() || n.PID() == 0 {
			t.Fatalf("start %d: log %s (want %s), running %v, PID %d", start, n.Spec.Log, log, n.Running(), n.PID())
		}
		if start == 2 {
			break
		}
		if _, err := n.Kill(); err != nil || n.Running() || n.PID() != 0 {
			t.Fatalf("Kill() = %v; running %v, PID %d", err, n.Running(), n.PID())
		}
		if _, err := n.Kill(); err == nil || err.Error() != "helper serve is not running" {
			t.Errorf("second Kill() = %v, want not running", err)
		}
	}
	if err := g.Stop(10 * time.Second); err != nil || n.Running() {
		t.Errorf("Group.Stop() = %v, running %v", err, n.Running())
	}
}

func TestPoll(t *testing.T) {
	calls := 0
	err := Poll(context.Background(), time.Minute, func(context.Context) error {
		if calls++; calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("Poll() = %v after %d calls, want nil after 3", err, calls)
	}
	err = Poll(context.Background(), 100*time.Millisecond, func(context.Context) error { return errors.New("never") })
	if err == nil || err.Error() != "after 100ms: never" {
		t.Errorf("Poll() = %v, want the last error after the timeout", err)
	}
}
