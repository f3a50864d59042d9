package proc

import (
	"context"
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

// helperEnv makes the test binary act as a child process: its value is
// the mode (see helper), the first argument the address to listen on.
const helperEnv = "PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		helper(mode, os.Args[1])
	}
	os.Exit(m.Run())
}

// helper is the child: "serve" answers HTTP on addr until SIGTERM and
// exits 0; "stubborn" ignores SIGTERM and listens; "silent" never
// listens; "crash" exits 3 at once.
func helper(mode, addr string) {
	fmt.Println("helper", mode, "starting")
	switch mode {
	case "crash":
		os.Exit(3)
	case "silent":
		select {}
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	go http.Serve(ln, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	if mode == "stubborn" {
		select {}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	os.Exit(0)
}

// helperSpec returns the Spec of a helper in mode listening on addr.
func helperSpec(t *testing.T, mode, addr string) Spec {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Name: "helper " + mode, Bin: self, Args: []string{addr}, Env: []string{helperEnv + "=" + mode},
		Log: filepath.Join(t.TempDir(), "logs", mode+".log")}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addrs, err := FreeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	return addrs[0]
}

func TestStartReadyStop(t *testing.T) {
	tests := map[string]func(addr string) Probe{
		"http": func(addr string) Probe { return HTTP("http://" + addr + "/") },
		"tcp":  TCP,
	}
	for name, probe := range tests {
		t.Run(name, func(t *testing.T) {
			addr := freeAddr(t)
			s := helperSpec(t, "serve", addr)
			p, err := StartReady(context.Background(), s, 30*time.Second, probe(addr))
			if err != nil {
				t.Fatal(err)
			}
			if p.PID() <= 0 || p.Exited() {
				t.Fatalf("PID %d, exited %v; want a running process", p.PID(), p.Exited())
			}
			if m, err := p.Memory(); err != nil || m.RSS == 0 {
				t.Errorf("Memory() = %+v, %v; want some RSS", m, err)
			}
			if err := p.Stop(10 * time.Second); err != nil {
				t.Fatalf("Stop() = %v", err)
			}
			if !p.Exited() || !strings.Contains(p.LogTail(), "helper serve starting") {
				t.Errorf("exited %v, log %q; want the helper's output", p.Exited(), p.LogTail())
			}
			if err := p.Stop(time.Second); err == nil || !strings.Contains(err.Error(), "had already exited") {
				t.Errorf("second Stop() = %v, want already exited", err)
			}
		})
	}
}

func TestWaitReadyFails(t *testing.T) {
	tests := map[string]struct {
		mode string
		want string
	}{
		"never ready":   {mode: "silent", want: "helper silent not ready after 300ms (last probe: probe "},
		"exits at once": {mode: "crash", want: "helper crash exited before becoming ready (exit status 3); log tail:\nhelper crash starting"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			addr := freeAddr(t)
			start := time.Now()
			_, err := StartReady(context.Background(), helperSpec(t, tt.mode, addr), 300*time.Millisecond, TCP(addr))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("StartReady() = %v, want it to contain %q", err, tt.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("StartReady took %v, want it to give up soon after 300ms", d)
			}
		})
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	addr := freeAddr(t)
	p, err := StartReady(context.Background(), helperSpec(t, "stubborn", addr), 30*time.Second, TCP(addr))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Stop(200 * time.Millisecond)
	if want := "helper stubborn did not exit within 200ms of SIGTERM; killed"; err == nil || err.Error() != want {
		t.Fatalf("Stop() = %v, want %q", err, want)
	}
	if !p.Exited() {
		t.Error("the process still runs")
	}
}

func TestNodeKillRestart(t *testing.T) {
	addr := freeAddr(t)
	dir := filepath.Join(t.TempDir(), "n0")
	s := helperSpec(t, "serve", addr)
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
		if log := filepath.Join(dir, fmt.Sprintf("n0.%d.log", start)); n.Spec.Log != log {
			t.Errorf("start %d logs to %s, want %s", start, n.Spec.Log, log)
		}
		if !n.Running() || n.PID() == 0 {
			t.Fatalf("start %d: running %v, PID %d", start, n.Running(), n.PID())
		}
		if start == 1 {
			if _, err := n.Kill(); err != nil {
				t.Fatal(err)
			}
			if n.Running() || n.PID() != 0 {
				t.Fatalf("after Kill: running %v, PID %d", n.Running(), n.PID())
			}
			if _, err := n.Kill(); err == nil || err.Error() != "helper serve is not running" {
				t.Errorf("second Kill() = %v, want not running", err)
			}
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
	err = Poll(context.Background(), 100*time.Millisecond, func(context.Context) error { return fmt.Errorf("never") })
	if err == nil || err.Error() != "after 100ms: never" {
		t.Errorf("Poll() = %v, want the last error after the timeout", err)
	}
}
