package controller

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/test/harness"
)

// scrapedSample is one line of the operator's /metrics.
type scrapedSample struct {
	series string // name{labels}, as exposed
	value  float64
}

// scrapeBackupMetrics GETs the operator's /metrics (the manager's registry
// through promhttp, as controller-runtime's metrics server serves it; the
// suite binds none) and returns the kvstore_backup_ samples of the
// KVStore ns/name, by metric name.
func scrapeBackupMetrics(t *testing.T, ns, name string) map[string]scrapedSample {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s: %s", resp.Status, body)
	}
	got := map[string]scrapedSample{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "kvstore_backup_") ||
			!strings.Contains(line, fmt.Sprintf(`namespace=%q`, ns)) || !strings.Contains(line, fmt.Sprintf(`kvstore=%q`, name)) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		metric := line[:strings.IndexByte(line, '{')]
		got[metric] = scrapedSample{series: line[:i], value: v}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// recordedSeries turns scraped samples into promtool input series: the
// labels Prometheus adds (job, instance), each value held for samples
// minutes, the Unix timestamps rebased so that the test's time 0 is base.
func recordedSeries(scraped map[string]scrapedSample, base int64, samples int) []harness.Series {
	var out []harness.Series
	for metric, s := range scraped {
		v := s.value
		if strings.HasSuffix(metric, "_timestamp_seconds") {
			v -= float64(base)
		}
		series := strings.TrimSuffix(s.series, "}") + `,job="kvstore-operator",instance="operator:8443"}`
		out = append(out, harness.Series{Series: series, Values: fmt.Sprintf("%gx%d", v, samples)})
	}
	return out
}

// TestBackupAlertFires: a scheduled KVStore whose backup to a bucket it
// may not write fails marks the condition and the failure metric; the
// series the operator's /metrics then exposes make the shipped rule
// (config/prometheus/backup-rules.yaml) fire with promtool once two
// schedule periods have passed since the schedule's start (nothing ever
// succeeded), not before. Suspended, the schedule's series go and the rule
// stays silent; deleted, the KVStore's series go.
func TestBackupAlertFires(t *testing.T) {
	harness.PromtoolBin(t) // fail early, before the servers start
	s3 := harness.StartS3(t)
	s3.MakeBucket(t, "backups")
	ns := newNamespace(t)
	kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "alerting", Namespace: ns}}
	kv.Spec.TLS.Pods = "Disabled"
	kv.Spec.Backup = &kvv1.BackupSpec{Schedule: "@every 1h", Destination: kvv1.BackupDestination{S3: &kvv1.S3Destination{
		Bucket: "backups", Endpoint: s3.Endpoint, Region: s3.Region, BucketLookup: "path", CredentialsSecret: "forbidden"}}}
	create(t, kv)
	if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "forbidden", Namespace: ns},
		Data: map[string][]byte{S3AccessKeyIDKey: []byte(s3.Admin.AccessKey), S3SecretAccessKeyKey: []byte("not-the-secret")}}); err != nil {
		t.Fatal(err)
	}
	startBackupServers(t, kv, 1)

	b := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: "forbidden", Namespace: ns}, Spec: kvv1.KVStoreBackupSpec{KVStoreName: kv.Name}}
	if err := k8s.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	if b = waitBackup(t, ns, b.Name); b.Status.Phase != kvv1.BackupFailed || !strings.Contains(b.Status.Message, "SignatureDoesNotMatch") {
		t.Fatalf("status %+v", b.Status)
	}
	eventually(t, "the KVStore's condition False", func() error {
		k := &kvv1.KVStore{}
		if err := get(ns, kv.Name, k); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(k.Status.Conditions, kvv1.ConditionLastBackupSucceeded); c == nil || c.Status != metav1.ConditionFalse {
			return fmt.Errorf("condition %+v", c)
		}
		kv = k
		return nil
	})

	scraped := scrapeBackupMetrics(t, ns, kv.Name)
	t.Logf("scraped: %v", scraped)
	created := kv.CreationTimestamp.Unix()
	for metric, want := range map[string]float64{
		"kvstore_backup_failures_total":                   1,
		"kvstore_backup_schedule_period_seconds":          3600,
		"kvstore_backup_schedule_start_timestamp_seconds": float64(created),
	} {
		if got, ok := scraped[metric]; !ok || got.value != want {
			t.Errorf("%s = %v (exposed: %v), want %v", metric, got.value, ok, want)
		}
	}
	if f := scraped["kvstore_backup_last_failure_timestamp_seconds"].value; f < float64(created) {
		t.Errorf("last failure %v, before the KVStore's creation %d", f, created)
	}
	if s, ok := scraped["kvstore_backup_last_success_timestamp_seconds"]; ok {
		t.Errorf("a last success %v, but no backup succeeded", s.value)
	}

	// The test's time 0 is a minute before the KVStore's creation, so the
	// schedule starts at 60 s and two periods later the alert is due.
	base := created - 60
	due := 60 + 2*3600
	labels := map[string]string{"severity": "warning", "namespace": ns, "kvstore": kv.Name, "job": "kvstore-operator", "instance": "operator:8443"}
	harness.PromtoolTestRules(t, harness.RuleTests{
		RuleFiles: []string{harness.BackupRules()},
		Tests: []harness.RuleTest{{
			Name: "recorded after a forbidden backup", Interval: "1m",
			InputSeries: recordedSeries(scraped, base, 3*60),
			Alerts: []harness.AlertTest{
				{EvalTime: "1h", AlertName: "KVStoreBackupMissing"},
				{EvalTime: fmt.Sprintf("%ds", due), AlertName: "KVStoreBackupMissing"},
				{EvalTime: fmt.Sprintf("%ds", due+60), AlertName: "KVStoreBackupMissing", Alerts: []harness.ExpectedAlert{{
					Labels: labels,
					Annotations: map[string]string{
						"summary":     "No kvstore backup succeeded within two schedule periods.",
						"description": fmt.Sprintf("KVStore %s/%s: no backup succeeded for 2h 1m 0s, more than twice its schedule's period. See the LastBackupSucceeded condition and the BackupFailed events (kubectl describe kvstore), or the process's \"backup failed\" logs.", ns, kv.Name),
					},
				}}},
			},
		}},
	})

	// Suspended: the schedule's series go; what remains never fires.
	patch(t, kv, func(k *kvv1.KVStore) { k.Spec.Backup.Suspend = true })
	eventually(t, "the schedule's series removed", func() error {
		s := scrapeBackupMetrics(t, ns, kv.Name)
		for _, m := range []string{"kvstore_backup_schedule_period_seconds", "kvstore_backup_schedule_start_timestamp_seconds"} {
			if _, ok := s[m]; ok {
				return fmt.Errorf("%s still exposed", m)
			}
		}
		if _, ok := s["kvstore_backup_failures_total"]; !ok {
			return fmt.Errorf("the failure count is gone too")
		}
		scraped = s
		return nil
	})
	harness.PromtoolTestRules(t, harness.RuleTests{
		RuleFiles: []string{harness.BackupRules()},
		Tests: []harness.RuleTest{{
			Name: "recorded while suspended", Interval: "1m",
			InputSeries: recordedSeries(scraped, base, 10*60),
			Alerts: []harness.AlertTest{
				{EvalTime: fmt.Sprintf("%ds", due+60), AlertName: "KVStoreBackupMissing"},
				{EvalTime: "10h", AlertName: "KVStoreBackupMissing"},
			},
		}},
	})

	// Deleted: no series of it remain.
	if err := k8s.Delete(ctx, kv); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the KVStore's series deleted", func() error {
		if s := scrapeBackupMetrics(t, ns, kv.Name); len(s) != 0 {
			return fmt.Errorf("still exposed: %v", s)
		}
		return nil
	})
}
