// Package harness is the one way the tests run kvstore: it builds each
// binary once per test process (or takes a prebuilt one), runs a server
// as a child process (kill -9, SIGSTOP/SIGCONT, SIGTERM,
// restart on the same data dir and ports), runs an N-node cluster of
// processes, polls with a deadline, captures every process's log to a file
// under the test's artifacts directory, and talks to the servers over HTTP
// with typed bodies from package wire.
//
//	bin := harness.Binary(t, "server")            // $KVSTORE_SERVER_BIN, or go build once
//	p := harness.StartProcess(t, harness.ProcessOptions{Bin: bin})
//	c := harness.StartCluster(t, harness.ClusterOptions{Bin: bin, Size: 3})
//	harness.Eventually(t, "a leader", 20*time.Second, func() error { ... })
//
// Everything a helper starts is stopped by t.Cleanup; a failed test prints
// the tail of each process's output. The Docker suites share RequireDocker
// (one Docker suite at a time on a machine) and BuildImages.
//
// Package inprocess runs a whole server in the test's own process.
//
// An end-to-end package calls Main from its TestMain, so that the binaries
// it built are removed when it ends.
package harness
