package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadValuesRefused renders the chart with values that must not be
// accepted and checks that helm refuses them with a message naming the
// problem: values.schema.json for types, ranges and unknown keys, and the
// chart's validate.yaml for combinations of values.
func TestBadValuesRefused(t *testing.T) {
	t.Parallel()
	h := newHelm(t)
	const schemaErr = "values don't meet the specifications of the schema"
	tests := []struct {
		name    string
		release string // default "kvstore"
		values  string
		want    []string // substrings of helm's error
	}{
		{"zero replicas", "", "instance: {spec: {replicas: 0}}",
			[]string{schemaErr, "at '/instance/spec/replicas': minimum: got 0, want 1"}},
		{"ten replicas", "", "instance: {spec: {replicas: 10}}",
			[]string{"at '/instance/spec/replicas': maximum: got 10, want 9"}},
		{"replicas as a word", "", "instance: {spec: {replicas: three}}",
			[]string{"at '/instance/spec/replicas': got string, want integer"}},
		{"fractional replicas", "", "instance: {spec: {replicas: 2.5}}",
			[]string{"at '/instance/spec/replicas': got number, want integer"}},
		{"unknown pull policy", "", "image: {pullPolicy: Sometimes}",
			[]string{"at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'"}},
		{"unknown top-level key", "", "replicas: 3",
			[]string{"at '': additional properties 'replicas' not allowed"}},
		{"unknown spec key", "", "instance: {spec: {size: 1Gi}}",
			[]string{"at '/instance/spec': additional properties 'size' not allowed"}},
		{"negative replicaCount", "", "replicaCount: -1",
			[]string{"at '/replicaCount': minimum: got -1, want 1"}},
		{"zero replicaCount", "", "replicaCount: 0",
			[]string{"at '/replicaCount': minimum: got 0, want 1"}},
		{"numeric image tag", "", "image: {tag: 1.2}",
			[]string{"at '/image/tag': got number, want string"}},
		{"operator log level warn", "", "logLevel: warn",
			[]string{"at '/logLevel': value must be one of 'debug', 'info', 'error'"}},
		{"too many reconciles", "", "maxConcurrentReconciles: 100",
			[]string{"at '/maxConcurrentReconciles': maximum: got 100, want 64"}},
		{"watch namespace not a name", "", "watchNamespace: Team_A",
			[]string{"at '/watchNamespace': 'Team_A' does not match pattern"}},
		{"serviceMonitor toggle as string", "", `serviceMonitor: {enabled: "yes"}`,
			[]string{"at '/serviceMonitor/enabled': got string, want boolean"}},
		{"ingress without host", "", "instance: {spec: {ingress: {enabled: true}}}",
			[]string{"at '/instance/spec/ingress': missing property 'host'"}},
		{"ingress host with capitals", "", "instance: {spec: {ingress: {enabled: true, host: KV.example.com}}}",
			[]string{"at '/instance/spec/ingress/host': 'KV.example.com' does not match pattern"}},
		{"value limit over 64 MiB", "", "instance: {spec: {config: {maxValueBytes: 100000000}}}",
			[]string{"at '/instance/spec/config/maxValueBytes': maximum"}},
		{"server log level", "", "instance: {spec: {config: {logLevel: trace}}}",
			[]string{"at '/instance/spec/config/logLevel': value must be one of 'debug', 'info', 'warn', 'error'"}},
		{"storage size not a quantity", "", "instance: {spec: {storage: {size: lots}}}",
			[]string{"at '/instance/spec/storage/size': 'lots' does not match pattern"}},
		{"image with a space", "", `instance: {spec: {image: "kvstore/kvstore: v1"}}`,
			[]string{"at '/instance/spec/image'"}},
		{"issuer kind", "", "instance: {spec: {tls: {issuerRef: {name: ca, kind: Vault}}}}",
			[]string{"at '/instance/spec/tls/issuerRef/kind': value must be one of 'Issuer', 'ClusterIssuer'"}},
		{"instance name with capitals", "", "instance: {name: MyStore}",
			[]string{"at '/instance/name': 'MyStore' does not match pattern"}},
		{"several replicas without leader election", "", "replicaCount: 2\nleaderElection: {enabled: false}",
			[]string{"replicaCount is 2 but leaderElection.enabled is false"}},
		{"even replicas", "", "instance: {enabled: true, spec: {replicas: 2}}",
			[]string{"instance.spec.replicas is 2: it must be odd (1, 3, 5, 7 or 9)", "survives no more failures than one of 2k-1"}},
		{"both TLS sources", "", "instance: {enabled: true, spec: {tls: {secretName: mine, issuerRef: {name: ca}}}}",
			[]string{"instance.spec.tls: set at most one of secretName"}},
		{"release name too long for a KVStore", strings.Repeat("k", 53), "instance: {enabled: true}",
			[]string{`the KVStore name "kkkk`, "must be at most 52 characters"}},
		{"instance outside the watched namespace", "", "instance: {enabled: true}\nwatchNamespace: other",
			[]string{`watchNamespace is "other"`, "which the operator would not watch"}},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(file, []byte(tc.values+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			release := tc.release
			if release == "" {
				release = "kvstore"
			}
			out, err := h.template(release, "kvstore", "-f", file)
			if err == nil {
				t.Fatalf("case %d: values accepted:\n%s\nrendered %d bytes", i, tc.values, len(out))
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q:\n%v", want, err)
				}
			}
		})
	}
}
