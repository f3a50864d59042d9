package kvctl

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"kvstore.dev/kvstore/client"
	"kvstore.dev/kvstore/wire"
)

// maxStdinValue bounds a value read from stdin or a file (the server's
// default value limit is 1 MiB; a larger one is the server's to refuse).
const maxStdinValue = 64 << 20

// args parses a command's flags (set up by def) and checks the number of
// arguments.
func (e *env) args(name string, args []string, min, max int, def func(fs *flag.FlagSet)) ([]string, error) {
	fs := newFlagSet("kvctl "+name, e.g, e.stderr)
	if def != nil {
		def(fs)
	}
	pos, err := parseArgs(fs, args, false)
	if err != nil {
		return nil, err
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return nil, usagef("%s: %d arguments given; run 'kvctl help'", name, len(pos))
	}
	if _, err := e.json(); err != nil {
		return nil, err
	}
	return pos, nil
}

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	return enc.Encode(v)
}

func cmdGet(e *env, args []string) error {
	var consistency string
	pos, err := e.args("get", args, 1, 1, func(fs *flag.FlagSet) {
		fs.StringVar(&consistency, "consistency", "", "linearizable (default), leader or stale")
	})
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	ctx, cancel := e.bounded()
	defer cancel()
	var opts []client.ReadOption
	if consistency != "" {
		opts = append(opts, client.Consistency(consistency))
	}
	kv, err := c.Get(ctx, pos[0], opts...)
	if err != nil {
		return err
	}
	if j, _ := e.json(); j {
		return e.printJSON(kv)
	}
	_, err = e.stdout.Write(kv.Value) // the value as stored, for scripts
	return err
}

func cmdPut(e *env, args []string) error {
	var (
		file, contentType string
		ttl               time.Duration
		ifMatch           uint64
		ifExists, create  bool
	)
	pos, err := e.args("put", args, 1, 2, func(fs *flag.FlagSet) {
		fs.StringVar(&file, "f", "", "read the value from this file (- for stdin)")
		fs.DurationVar(&ttl, "ttl", 0, "expire the key after this long (30s, 1h)")
		fs.Uint64Var(&ifMatch, "if-match", 0, "write only if the key's revision is this one")
		fs.BoolVar(&ifExists, "if-exists", false, "write only if the key exists")
		fs.BoolVar(&create, "create", false, "write only if the key does not exist")
		fs.StringVar(&contentType, "content-type", "", "media type stored with the value")
	})
	if err != nil {
		return err
	}
	var value []byte
	switch {
	case len(pos) == 2 && file != "":
		return usagef("put: give the value as an argument or with -f, not both")
	case len(pos) == 2 && pos[1] == "-", file == "-":
		if value, err = readAll(e.stdin); err != nil {
			return fmt.Errorf("reading the value from stdin: %w", err)
		}
	case len(pos) == 2:
		value = []byte(pos[1])
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("-f: %w", err)
		}
		value, err = readAll(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("-f %s: %w", file, err)
		}
	default:
		return usagef("put: no value: give it as an argument, with -f FILE, or - for stdin")
	}
	var opts []client.WriteOption
	if ttl != 0 {
		opts = append(opts, client.TTL(ttl))
	}
	if ifMatch != 0 {
		opts = append(opts, client.IfMatch(ifMatch))
	}
	if ifExists {
		opts = append(opts, client.IfExists())
	}
	if create {
		opts = append(opts, client.IfAbsent())
	}
	if contentType != "" {
		opts = append(opts, client.ContentType(contentType))
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	ctx, cancel := e.bounded()
	defer cancel()
	res, err := c.Put(ctx, pos[0], value, opts...)
	if err != nil {
		return err
	}
	if j, _ := e.json(); j {
		return e.printJSON(struct {
			wire.KeyMeta
			Created bool `json:"created"`
		}{res.KeyMeta, res.Created})
	}
	verb := "updated"
	if res.Created {
		verb = "created"
	}
	_, err = fmt.Fprintf(e.stdout, "%s %s revision %d\n", verb, res.Key, res.Revision)
	return err
}

func readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxStdinValue+1))
	if err == nil && len(b) > maxStdinValue {
		return nil, fmt.Errorf("the value exceeds %d bytes", maxStdinValue)
	}
	return b, err
}

func cmdDel(e *env, args []string) error {
	var prefix string
	var ifMatch uint64
	pos, err := e.args("del", args, 0, 1, func(fs *flag.FlagSet) {
		fs.StringVar(&prefix, "prefix", "", "delete every key under this (non-empty) prefix")
		fs.Uint64Var(&ifMatch, "if-match", 0, "delete only if the key's revision is this one")
	})
	if err != nil {
		return err
	}
	if (prefix == "") == (len(pos) == 0) {
		return usagef("del: give a KEY or --prefix PREFIX (one of them)")
	}
	if prefix != "" && ifMatch != 0 {
		return usagef("del: --if-match applies to one key, not to --prefix")
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	ctx, cancel := e.bounded()
	defer cancel()
	j, _ := e.json()
	if prefix != "" {
		res, err := c.DeletePrefix(ctx, prefix)
		if err != nil {
			return err
		}
		if j {
			return e.printJSON(res)
		}
		_, err = fmt.Fprintf(e.stdout, "deleted %d keys revision %d\n", res.Deleted, res.Revision)
		return err
	}
	var opts []client.WriteOption
	if ifMatch != 0 {
		opts = append(opts, client.IfMatch(ifMatch))
	}
	rev, err := c.Delete(ctx, pos[0], opts...)
	if err != nil {
		return err
	}
	if j {
		return e.printJSON(map[string]any{"key": pos[0], "revision": rev})
	}
	_, err = fmt.Fprintf(e.stdout, "deleted %s revision %d\n", pos[0], rev)
	return err
}

func cmdLs(e *env, args []string) error {
	var keysOnly bool
	var limit int
	var consistency string
	pos, err := e.args("ls", args, 0, 1, func(fs *flag.FlagSet) {
		fs.BoolVar(&keysOnly, "keys-only", false, "leave out values (-o json)")
		fs.IntVar(&limit, "limit", 0, "list at most this many keys (0: all)")
		fs.StringVar(&consistency, "consistency", "", "linearizable (default), leader or stale")
	})
	if err != nil {
		return err
	}
	if limit < 0 {
		return usagef("ls: --limit must not be negative")
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	ctx, cancel := e.bounded()
	defer cancel()
	j, _ := e.json()
	opts := client.ListOptions{KeysOnly: keysOnly || !j, Consistency: consistency}
	if len(pos) == 1 {
		opts.Prefix = pos[0]
	}
	if limit > 0 {
		opts.PageSize = min(limit, 1000)
	}
	n := 0
	for kv, err := range c.List(ctx, opts) {
		if err != nil {
			return err
		}
		if j {
			err = e.printJSON(kv)
		} else {
			_, err = fmt.Fprintln(e.stdout, kv.Key)
		}
		if err != nil {
			return err
		}
		if n++; limit > 0 && n >= limit {
			break
		}
	}
	return nil
}

func cmdWatch(e *env, args []string) error {
	var since uint64
	var count int
	pos, err := e.args("watch", args, 0, 1, func(fs *flag.FlagSet) {
		fs.Uint64Var(&since, "since", 0, "replay the changes after this revision first (0: from now)")
		fs.IntVar(&count, "count", 0, "exit after this many changes (0: run until interrupted)")
	})
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	opts := client.WatchOptions{Since: since}
	if len(pos) == 1 {
		opts.Prefix = pos[0]
	}
	j, _ := e.json()
	n := 0
	for ev, err := range c.Watch(e.ctx, opts) {
		if err != nil {
			if e.ctx.Err() != nil {
				return nil // interrupted: the normal end of a watch
			}
			return err
		}
		if j {
			err = e.printJSON(ev)
		} else {
			err = printEvent(e.stdout, ev)
		}
		if err != nil {
			return err
		}
		if n++; count > 0 && n >= count {
			return nil
		}
	}
	return nil
}

// printEvent writes "TYPE KEY REVISION [VALUE]"; a value that is not
// printable on one line is quoted.
func printEvent(w io.Writer, ev wire.WatchEvent) error {
	if ev.Type != wire.EventPut {
		_, err := fmt.Fprintf(w, "%s %s %d\n", ev.Type, ev.Key, ev.Revision)
		return err
	}
	v := string(ev.Value)
	if !utf8.ValidString(v) || strconv.Quote(v) != `"`+v+`"` {
		v = strconv.Quote(v)
	}
	_, err := fmt.Fprintf(w, "%s %s %d %s\n", ev.Type, ev.Key, ev.Revision, v)
	return err
}

func cmdStatus(e *env, args []string) error {
	if _, err := e.args("status", args, 0, 0, nil); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	ctx, cancel := e.bounded()
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if j, _ := e.json(); j {
		return e.printJSON(st)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "version:\t%s\nrevision:\t%d\nstarted:\t%s\nuptime:\t%s\n", st.Version, st.Revision,
		st.StartedAt.Format(time.RFC3339), (time.Duration(st.UptimeSeconds) * time.Second).String())
	if st.AppliedIndex != 0 { // an admin token's numbers
		fmt.Fprintf(tw, "keys:\t%d\ndb size:\t%d bytes\nwatchers:\t%d\napplied index:\t%d\n", st.Keys, st.DBSizeBytes, st.Watchers, st.AppliedIndex)
	}
	return tw.Flush()
}

func cmdCluster(e *env, args []string) error {
	var nonvoter bool
	pos, err := e.args("cluster", args, 0, 3, func(fs *flag.FlagSet) {
		fs.BoolVar(&nonvoter, "nonvoter", false, "cluster add: add a non-voter (promote it later with add)")
	})
	if err != nil {
		return err
	}
	sub := "status"
	if len(pos) > 0 {
		sub, pos = pos[0], pos[1:]
	}
	want := map[string]int{"status": 0, "add": 2, "remove": 1}
	if n, ok := want[sub]; !ok || len(pos) != n {
		return usagef("cluster: want 'cluster status', 'cluster add ID ADDRESS' or 'cluster remove ID'")
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	ctx, cancel := e.bounded()
	defer cancel()
	j, _ := e.json()
	switch sub {
	case "add":
		voter := !nonvoter
		if err := c.AddMember(ctx, wire.AddMemberRequest{ID: pos[0], Address: pos[1], Voter: &voter}); err != nil {
			return err
		}
		if j {
			return e.printJSON(wire.AddMemberResponse{ID: pos[0], Address: pos[1], Voter: voter})
		}
		_, err := fmt.Fprintf(e.stdout, "added %s at %s (voter %t)\n", pos[0], pos[1], voter)
		return err
	case "remove":
		if err := c.RemoveMember(ctx, pos[0]); err != nil {
			return err
		}
		if j {
			return e.printJSON(wire.RemoveMemberResponse{Removed: pos[0]})
		}
		_, err := fmt.Fprintf(e.stdout, "removed %s\n", pos[0])
		return err
	}
	st, err := c.ClusterStatus(ctx)
	if err != nil {
		return err
	}
	if j {
		return e.printJSON(st)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\tADDRESS\tSUFFRAGE\tLEADER\tSTATE\tAPPLIED\n")
	for _, m := range st.Members {
		state, applied := "?", "?"
		if m.Status != nil {
			state, applied = m.Status.State, strconv.FormatUint(m.Status.AppliedIndex, 10)
		} else if m.Error != "" {
			state = "unreachable"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\n", m.ID, m.Address, m.Suffrage, m.Leader, state, applied)
	}
	if !st.Enabled {
		fmt.Fprintf(tw, "(a single node, not in cluster mode)\n")
	}
	return tw.Flush()
}

func cmdSnapshot(e *env, args []string) error {
	pos, err := e.args("snapshot", args, 1, 1, nil)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	if pos[0] == "-" {
		_, err := c.SnapshotTo(e.ctx, e.stdout)
		return err
	}
	// Into a temporary file beside the target, renamed once complete: a
	// cut stream never leaves a file that looks like a snapshot.
	tmp, err := os.CreateTemp(filepath.Dir(pos[0]), filepath.Base(pos[0])+".part-*")
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	n, err := c.SnapshotTo(e.ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), pos[0])
	}
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", pos[0], err)
	}
	if j, _ := e.json(); j {
		return e.printJSON(map[string]any{"file": pos[0], "bytes": n})
	}
	_, err = fmt.Fprintf(e.stdout, "wrote %d bytes to %s\n", n, pos[0])
	return err
}
