package backupcmd

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.yaml")
	os.WriteFile(file, []byte("server: http://kv:8080\ndestination: s3://backups/kv\nretention: {keep_last: 7, max_age: 30d}\ns3: {endpoint: \"http://weed:8333\", bucket_lookup: path}\n"), 0o600)
	noEnv := func(string) string { return "" }
	cfg, err := Load([]string{"--config", file, "--keep-last", "3", "--schedule", "@daily", "--metrics-listen", "127.0.0.1:9100"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "http://kv:8080" || cfg.Retention.KeepLast != 3 || cfg.Retention.Retention().MaxAge != 30*24*time.Hour ||
		cfg.S3.Endpoint != "http://weed:8333" || cfg.S3.BucketLookup != "path" || cfg.Schedule != "@daily" || cfg.Timeout.D() != time.Hour ||
		cfg.MaxBytesPerSecond() != 16<<20 {
		t.Fatalf("Load = %+v", cfg)
	}
	for args, want := range map[string]int64{"--max-rate=32MiB": 32 << 20, "--max-rate=0": 0, "--max-rate=50M": 50e6} {
		cfg, err := Load([]string{"--destination", "file:///b", args}, noEnv, io.Discard)
		if err != nil || cfg.MaxBytesPerSecond() != want {
			t.Errorf("Load(%s): max rate %d, %v; want %d", args, cfg.MaxBytesPerSecond(), err, want)
		}
	}
	os.WriteFile(file, []byte("destination: file:///b\nmax_rate: 16MiB\n"), 0o600)
	if cfg, err := Load([]string{"--config", file}, noEnv, io.Discard); err != nil || cfg.MaxBytesPerSecond() != 16<<20 {
		t.Errorf("max_rate: 16MiB in the file: %d, %v", cfg.MaxBytesPerSecond(), err)
	}
	tests := map[string]struct {
		args  []string
		field string // the field the error names
	}{
		"no destination":         {[]string{}, "destination:"},
		"bad destination":        {[]string{"--destination", "s3://B/x"}, "destination:"},
		"bad server":             {[]string{"--destination", "file:///b", "--server", "kv:8080"}, "server:"},
		"server with a token":    {[]string{"--destination", "file:///b", "--server", "http://admin:tok@kv"}, "server:"},
		"bad schedule":           {[]string{"--destination", "file:///b", "--schedule", "every day"}, "schedule:"},
		"suspend alone":          {[]string{"--destination", "file:///b", "--suspend"}, "suspend:"},
		"metrics without sched":  {[]string{"--destination", "file:///b", "--metrics-listen", ":9100"}, "metrics_listen:"},
		"result with a schedule": {[]string{"--destination", "file:///b", "--schedule", "@daily", "--result-file", "/r"}, "result_file:"},
		"bad age":                {[]string{"--destination", "file:///b", "--max-age", "30"}, "retention.max_age:"},
		"negative count":         {[]string{"--destination", "file:///b", "--keep-last", "-1"}, "retention.keep_last:"},
		"bad endpoint":           {[]string{"--destination", "s3://b-1/x", "--s3-endpoint", "weed:8333"}, "s3:"},
		"one key file":           {[]string{"--destination", "s3://b-1/x", "--s3-access-key-file", "/k"}, "s3:"},
		"bad rate":               {[]string{"--destination", "file:///b", "--max-rate", "32 mb/s"}, "max_rate:"},
		"too low a rate":         {[]string{"--destination", "file:///b", "--max-rate", "64KiB"}, "max_rate:"},
		"bad timeout":            {[]string{"--destination", "file:///b", "--timeout", "1ms"}, "timeout:"},
		"bad log level":          {[]string{"--destination", "file:///b", "--log-level", "loud"}, "log.level:"},
		"argument":               {[]string{"--destination", "file:///b", "now"}, "unexpected argument"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Load(tc.args, noEnv, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Load(%q) = %v; want an error naming %q", tc.args, err, tc.field)
			}
		})
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "admin.token")
	os.WriteFile(file, []byte("from-the-file-0123456789\n"), 0o600)
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "KVSTORE_ADMIN_TOKEN" {
				return v
			}
			return ""
		}
	}
	tests := map[string]struct {
		cfg  Config
		env  string
		want string
		err  string
	}{
		"env wins": {Config{TokenFile: file}, "from-env-0123456789", "from-env-0123456789", ""},
		"file":     {Config{TokenFile: file}, "", "from-the-file-0123456789", ""},
		"none":     {Config{}, "", "", "no admin token"},
		"no file":  {Config{TokenFile: filepath.Join(dir, "missing")}, "", "", "token_file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.cfg.Token(env(tc.env))
			if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Token = %q, %v; want %q, error %q", got, err, tc.want, tc.err)
			}
		})
	}
}
