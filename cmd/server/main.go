// Command kvstore is the kvstore server: a key-value store on bbolt with an
// HTTP/JSON API. See README.md and docs/api.md.
//
//	kvstore [serve] [--config FILE] [--listen ADDR] [--debug-listen ADDR] [--data-dir DIR] [--log-level L] [--log-format F]
//	kvstore restore --from FILE --data-dir DIR [--force]
//	kvstore restore --from s3://bucket/prefix|file:///path [--backup NAME] [--sha256 HEX] [--s3-...] --data-dir DIR [--force]
//	kvstore restore --from FILE|URI [...] --data-dir DIR --node-id ID --peer-advertise HOST:PORT   (a new cluster's first member)
//	kvstore recover --data-dir DIR --node-id ID [--address ADDR]
//	kvstore backup --server URL --destination URI [--keep-last N] [--max-age AGE] [--schedule CRON [--suspend] [--metrics-listen ADDR]] [--s3-...]
//	kvstore healthcheck [--url URL] [--ca-file FILE] [--cert-file FILE --key-file FILE]
//	kvstore certs --dir DIR [--ca-dir DIR] [--hosts h1,h2,...]
//	kvstore certs --dir DIR --peer --cluster NAME --node ID [--hosts h1,h2,...]
//	kvstore version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/internal/backupcmd"
	"kvstore.dev/kvstore/internal/certdir"
	"kvstore.dev/kvstore/internal/certs"
	"kvstore.dev/kvstore/internal/cluster"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/healthcheck"
	"kvstore.dev/kvstore/internal/server"
	"kvstore.dev/kvstore/internal/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "kvstore:", err)
		}
		os.Exit(2)
	}
}

// run dispatches a subcommand; serve is the default.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := config.Load(args, getenv, stderr)
		if err != nil {
			return err
		}
		return server.Run(ctx, cfg, server.NewLogger(cfg.Log, stderr), nil)
	case "restore":
		return restore(ctx, args, getenv, stdout, stderr)
	case "recover":
		return recoverCluster(args, stdout, stderr)
	case "backup":
		return backupcmd.Run(ctx, args, getenv, stderr, nil)
	case "healthcheck":
		return healthcheck.Run(ctx, args, stderr)
	case "certs":
		return makeCerts(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "kvstore", server.Version)
		return nil
	}
	return fmt.Errorf("unknown command %q (want serve, restore, recover, backup, healthcheck, certs or version)", cmd)
}

// recoverCluster is `kvstore recover`: cluster.Recover on a stopped
// member's data dir (docs/backup.md, "Lost quorum").
func recoverCluster(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kvstore recover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data `directory` of the (stopped) cluster member")
	nodeID := fs.String("node-id", "", "the member's node `id` (cluster.node_id)")
	address := fs.String("address", "", "its peer `address` in the new configuration (cluster.peer_advertise; default: the one it has now)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("recover: unexpected arguments %q", fs.Args())
	case *dataDir == "":
		return errors.New("recover: --data-dir is required")
	case *nodeID == "":
		return errors.New("recover: --node-id is required")
	}
	res, err := cluster.Recover(*dataDir, *nodeID, *address)
	if err != nil {
		return err
	}
	prev := make([]string, len(res.Previous))
	for i, s := range res.Previous {
		prev[i] = string(s.ID)
	}
	fmt.Fprintf(stdout, "recovered %s: the configuration [%s] is now %s at %s alone (voter); kept the log up to term %d, index %d (store applied index %d)\n",
		*dataDir, strings.Join(prev, " "), res.NodeID, res.Address, res.LastLogTerm, res.LastLogIndex, res.AppliedIndex)
	fmt.Fprintln(stdout, "start the server with its usual flags: it becomes leader of a one-server cluster; add members with their join flags")
	return nil
}

func restore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kvstore restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "snapshot `file` taken with GET /api/v1/snapshot, or a backup destination URI (s3://bucket/prefix, file:///path)")
	name := fs.String("backup", "", "with a destination URI: the backup `name` to restore (default: the newest)")
	sum := fs.String("sha256", "", "with a destination URI: the SHA-256 (hex) the backup must have, besides matching its manifest")
	dataDir := fs.String("data-dir", "", "data `directory` of the (stopped) server")
	force := fs.Bool("force", false, "replace an existing database (it is kept as kv.db.pre-restore-<time>); never into a multi-server cluster member")
	var member server.Member
	fs.StringVar(&member.NodeID, "node-id", "", "seed a new cluster: the `id` its first member runs with (serve's --node-id); the data dir must be empty")
	fs.StringVar(&member.PeerAdvertise, "peer-advertise", "", "with --node-id: the member's peer `address` (serve's --peer-advertise, host:port)")
	s3 := backupcmd.AddS3Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	asMember := member.NodeID != "" || member.PeerAdvertise != ""
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("restore: unexpected arguments %q", fs.Args())
	case *from == "":
		return errors.New("restore: --from is required")
	case *dataDir == "":
		return errors.New("restore: --data-dir is required")
	case asMember && (member.NodeID == "" || member.PeerAdvertise == ""):
		return errors.New("restore: --node-id and --peer-advertise go together")
	case asMember && *force:
		return errors.New("restore: --force does not go with --node-id: a new cluster is restored only into an empty data dir")
	}
	if !strings.Contains(*from, "://") {
		if *name != "" || *sum != "" {
			return errors.New("restore: --backup and --sha256 go with a destination URI in --from")
		}
		if asMember {
			st, idx, err := server.RestoreAsMember(*dataDir, member, func() (store.Status, error) { return server.Restore(*from, *dataDir, false) })
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			fmt.Fprintf(stdout, "restored %s into %s: revision %d, %d keys; %s\n", *from, *dataDir, st.Revision, st.Keys, seededLine(member, idx))
			return nil
		}
		st, err := server.Restore(*from, *dataDir, *force)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		fmt.Fprintf(stdout, "restored %s into %s: revision %d, %d keys\n", *from, *dataDir, st.Revision, st.Keys)
		return nil
	}
	loc, err := backup.ParseURI(*from)
	if err != nil {
		return fmt.Errorf("restore: --from: %w", err)
	}
	dest, err := backup.New(loc, s3.Options(getenv))
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if asMember {
		m, st, idx, err := server.RestoreBackupAsMember(ctx, dest, *name, *sum, *dataDir, member)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		fmt.Fprintf(stdout, "restored backup %s (sha256 %s, %d bytes) from %s into %s: revision %d, %d keys; %s\n",
			m.Name, m.SHA256, m.SizeBytes, dest.URI(), *dataDir, st.Revision, st.Keys, seededLine(member, idx))
		return nil
	}
	m, st, err := server.RestoreBackup(ctx, dest, *name, *sum, *dataDir, *force)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "restored backup %s (sha256 %s, %d bytes) from %s into %s: revision %d, %d keys\n",
		m.Name, m.SHA256, m.SizeBytes, dest.URI(), *dataDir, st.Revision, st.Keys)
	return nil
}

// seededLine says what a restore as a new cluster's first member left.
func seededLine(m server.Member, index uint64) string {
	return fmt.Sprintf("seeded a one-server cluster of %s at %s (raft index %d): start it with serve --node-id %s --peer-advertise %s, then join the others to it",
		m.NodeID, m.PeerAdvertise, index, m.NodeID, m.PeerAdvertise)
}

// makeCerts makes sure a directory holds a TLS certificate for the edge
// (nginx): a self-signed CA and server certificate unless the user brought
// their own. It is the compose stack's one-shot first-start step.
func makeCerts(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kvstore certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "certificate `directory` (ca.crt, ca.key, server.crt, server.key)")
	hosts := fs.String("hosts", "localhost,127.0.0.1", "comma-separated DNS names and IP addresses the certificate is for")
	peer := addPeerCertFlags(fs)
	caDir := fs.String("ca-dir", "", "keep the CA (ca.key) in this `directory` instead, and put only server.crt, server.key and ca.crt in --dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("certs: --dir is required")
	}
	var list []string
	for h := range strings.SplitSeq(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			list = append(list, h)
		}
	}
	if len(list) == 0 {
		return errors.New("certs: --hosts must name at least one host")
	}
	if *peer.peer {
		if *caDir != "" {
			return errors.New("certs: --peer signs with the CA in --dir; --ca-dir is for the edge certificate only")
		}
		return makePeerCert(peer, *dir, list, stdout)
	}
	ensure := certs.EnsureDir
	if *caDir != "" {
		ensure = func(dir string, hosts []string, now time.Time) (certs.Outcome, error) {
			return certdir.Ensure(dir, *caDir, hosts, now)
		}
	}
	outcome, err := ensure(*dir, list, time.Now())
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	fmt.Fprintf(stdout, "certs: %s in %s (hosts %s)\n", outcome, *dir, strings.Join(list, ","))
	return nil
}
