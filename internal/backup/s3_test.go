package backup_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/test/harness"
)

// TestS3 runs against a real S3 server, SeaweedFS's weed (make test-deps
// builds it; without it the test fails, it is not skipped).
func TestS3(t *testing.T) {
	other := harness.S3Identity{Name: "other", AccessKey: "kvtestother", SecretKey: "kvtest-other-secret-0123456789",
		Actions: []string{"Read:other", "Write:other", "List:other"}}
	s3 := harness.StartS3(t, other)
	s3.MakeBucket(t, "backups")
	s3.MakeBucket(t, "other")
	env := func(id harness.S3Identity) func(string) string {
		return func(k string) string {
			return map[string]string{backup.EnvAccessKey: id.AccessKey, backup.EnvSecretKey: id.SecretKey}[k]
		}
	}
	dest := func(t *testing.T, uri string, id harness.S3Identity, opts backup.S3Options) backup.Destination {
		t.Helper()
		loc, err := backup.ParseURI(uri)
		if err != nil {
			t.Fatal(err)
		}
		if opts.Endpoint == "" {
			opts.Endpoint = s3.Endpoint
		}
		opts.Getenv = env(id)
		d, err := backup.New(loc, opts)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	ctx := context.Background()

	t.Run("write list open prune", func(t *testing.T) {
		exercise(t, dest(t, "s3://backups/team/kv", s3.Admin, backup.S3Options{BucketLookup: "path"}), 100<<10)
		// The objects are under the prefix, nowhere else.
		for obj := range s3.Client(t, s3.Admin).ListObjects(ctx, "backups", minio.ListObjectsOptions{Recursive: true}) {
			if obj.Err != nil {
				t.Fatal(obj.Err)
			}
			if !strings.HasPrefix(obj.Key, "team/kv/kvstore-") {
				t.Errorf("object %s outside the prefix team/kv/", obj.Key)
			}
		}
	})
	t.Run("multipart", func(t *testing.T) {
		// 12 MiB in 5 MiB parts: a streamed multipart upload of unknown size.
		exercise(t, dest(t, "s3://backups/multipart", s3.Admin, backup.S3Options{PartSize: 5 << 20}), 12<<20)
	})
	t.Run("corrupt object refused", func(t *testing.T) {
		d := dest(t, "s3://backups/corrupt", s3.Admin, backup.S3Options{})
		m, err := backup.Write(ctx, d, bytes.NewReader(randomBytes(t, 64<<10)), backup.Info{})
		if err != nil {
			t.Fatal(err)
		}
		bad := randomBytes(t, 64<<10)
		if _, err := s3.Client(t, s3.Admin).PutObject(ctx, "backups", "corrupt/"+m.Object, bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "fetched")
		if _, err := backup.Fetch(ctx, d, m.Name, path, ""); !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), "SHA-256") {
			t.Fatalf("Fetch of a replaced object = %v; want ErrCorrupt on the SHA-256", err)
		}
	})
	failures := map[string]struct {
		uri  string
		id   harness.S3Identity
		opts backup.S3Options
		want []string // in the error
	}{
		"wrong secret": {"s3://backups/denied", harness.S3Identity{AccessKey: s3.Admin.AccessKey, SecretKey: "not-the-secret-0123456789"}, backup.S3Options{},
			[]string{"s3 put s3://backups/denied/kvstore-", "HTTP 403", "check the credentials"}},
		"unknown key": {"s3://backups/denied", harness.S3Identity{AccessKey: "nobody", SecretKey: "nothing-0123456789"}, backup.S3Options{},
			[]string{"HTTP 403", "check the credentials"}},
		"forbidden bucket": {"s3://backups/denied", other, backup.S3Options{},
			[]string{"AccessDenied", "HTTP 403", "check the credentials and the bucket's policy"}},
		"unreachable endpoint": {"s3://backups/denied", s3.Admin, backup.S3Options{Endpoint: "http://127.0.0.1:" + strconv.Itoa(harness.FreePort(t))},
			[]string{"s3 put", "connection refused"}},
	}
	for name, tc := range failures {
		t.Run(name, func(t *testing.T) {
			d := dest(t, tc.uri, tc.id, tc.opts)
			_, err := backup.Write(ctx, d, bytes.NewReader(randomBytes(t, 1000)), backup.Info{})
			if err == nil {
				t.Fatal("Write succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Write error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), tc.id.SecretKey) {
				t.Errorf("the error shows the secret key: %v", err)
			}
		})
	}
	t.Run("nothing from the failures", func(t *testing.T) {
		ms, err := backup.List(ctx, dest(t, "s3://backups/denied", s3.Admin, backup.S3Options{}))
		if err != nil || len(ms) != 0 {
			t.Fatalf("List = %v, %v; want nothing", names(ms), err)
		}
	})
	t.Run("the other bucket works for its identity", func(t *testing.T) {
		d := dest(t, "s3://other/kv", other, backup.S3Options{})
		if _, err := backup.Write(ctx, d, bytes.NewReader(randomBytes(t, 1000)), backup.Info{}); err != nil {
			t.Fatal(err)
		}
	})
}
