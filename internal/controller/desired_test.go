package controller

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/wire"
)

func newKV(edit func(*kvv1.KVStore)) *kvv1.KVStore {
	kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "ns", UID: "uid-1", Generation: 4}}
	if edit != nil {
		edit(kv)
	}
	return kv
}

func TestRenderConfigLoadsInTheServer(t *testing.T) {
	cases := map[string]struct {
		edit      func(*kvv1.KVStore)
		level     string
		maxValues int
	}{
		"defaults":   {nil, "info", 1 << 20},
		"debug, 8Mi": {func(k *kvv1.KVStore) { k.Spec.Config = kvv1.ServerConfig{LogLevel: "debug", MaxValueBytes: 8 << 20} }, "debug", 8 << 20},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			text := renderConfig(newKV(tc.edit), BuildOptions{})
			cfg := config.Default()
			if err := config.Parse([]byte(text), &cfg); err != nil {
				t.Fatalf("server rejects the rendered config: %v\n%s", err, text)
			}
			if !cfg.Cluster.Enabled || cfg.Cluster.BootstrapNode != "kv-0" || cfg.Cluster.JoinAs != "nonvoter" || cfg.Cluster.Join[0] != "kv-peers.ns.svc.cluster.local:7000" {
				t.Errorf("cluster config %+v", cfg.Cluster)
			}
			cfg.Cluster.NodeID, cfg.Cluster.PeerAdvertise, cfg.Cluster.PeerToken = "kv-0", "kv-0.kv-peers.ns.svc.cluster.local:7000", "peer-token-0123456789"
			if err := cfg.Validate(); err != nil {
				t.Fatalf("invalid: %v", err)
			}
			if cfg.Log.Level != tc.level || cfg.Limits.MaxValueBytes != tc.maxValues || cfg.Pprof || cfg.DebugListen != ":6060" || cfg.DataDir != dataDir {
				t.Errorf("config %+v", cfg)
			}
			if strings.Contains(text, "token") {
				t.Error("the config file mentions a token; tokens come from the environment")
			}
		})
	}
}

// TestBootstrapAllowedUntilFormed: pod 0 may start a new cluster only
// until one has formed, and once the ConfigMap says so it keeps saying so,
// whatever a later status or view shows; the flip is outside the config
// file, so it leaves the pod template's hash alone.
func TestBootstrapAllowedUntilFormed(t *testing.T) {
	said := func(v string) *corev1.ConfigMap {
		return &corev1.ConfigMap{Data: map[string]string{bootstrapAllowedFile: v}}
	}
	cases := map[string]struct {
		edit    func(*kvv1.KVStore)
		view    *wire.ClusterStatus
		live    *corev1.ConfigMap
		allowed bool
	}{
		"new KVStore":                        {allowed: true},
		"ConfigMap says true, no leader yet": {live: said("true"), view: &wire.ClusterStatus{}, allowed: true},
		"a leader seen":                      {view: &wire.ClusterStatus{LeaderID: "kv-0"}},
		"a leader in the status":             {edit: func(k *kvv1.KVStore) { k.Status.Leader = "kv-1" }},
		"members in the status":              {edit: func(k *kvv1.KVStore) { k.Status.Members = []kvv1.MemberStatus{{Name: "kv-0", Suffrage: "Voter"}} }},
		"ConfigMap said false, status lost":  {live: said("false"), view: &wire.ClusterStatus{}},
		"restored from a backup":             {edit: func(k *kvv1.KVStore) { k.Spec.Bootstrap = &kvv1.BootstrapSpec{} }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := newKV(tc.edit)
			cm := desiredConfigMap(kv, BuildOptions{}, clusterFormed(kv, tc.view, tc.live))
			if got, want := cm.Data[bootstrapAllowedFile], strconv.FormatBool(tc.allowed); got != want {
				t.Errorf("%s = %q, want %q", bootstrapAllowedFile, got, want)
			}
			if other := desiredConfigMap(kv, BuildOptions{}, !clusterFormed(kv, tc.view, tc.live)); other.Data[configFile] != cm.Data[configFile] {
				t.Error("the config file changes with the bootstrap flag: the pods would roll")
			}
			cfg := config.Default()
			if err := config.Parse([]byte(cm.Data[configFile]), &cfg); err != nil {
				t.Fatal(err)
			}
			if want := configDir + "/" + bootstrapAllowedFile; cfg.Cluster.BootstrapAllowedFile != want {
				t.Errorf("cluster.bootstrap_allowed_file = %q, want %q (the mounted ConfigMap key)", cfg.Cluster.BootstrapAllowedFile, want)
			}
		})
	}
}

func TestConfigHash(t *testing.T) {
	base := configHash("cfg", "token")
	if configHash("cfg", "token") != base {
		t.Fatal("not deterministic")
	}
	for name, h := range map[string]string{"config": configHash("cfg2", "token"), "token": configHash("cfg", "token2"), "boundary": configHash("cfgt", "oken")} {
		if h == base {
			t.Errorf("a %s change keeps the hash", name)
		}
	}
}

func TestDesiredStatefulSet(t *testing.T) {
	opts := BuildOptions{DefaultImage: "kvstore/kvstore:default"}
	cases := map[string]struct {
		edit  func(*kvv1.KVStore)
		check func(t *testing.T, sts *appsv1.StatefulSet)
	}{
		"defaults": {nil, func(t *testing.T, sts *appsv1.StatefulSet) {
			c := sts.Spec.Template.Spec.Containers[0]
			if *sts.Spec.Replicas != 1 || c.Image != "kvstore/kvstore:default" || c.ImagePullPolicy != "" || c.Resources.Limits.Memory().String() != "1Gi" {
				t.Errorf("replicas %d image %s policy %q resources %v", *sts.Spec.Replicas, c.Image, c.ImagePullPolicy, c.Resources)
			}
			claim := sts.Spec.VolumeClaimTemplates[0]
			if claim.Spec.Resources.Requests.Storage().String() != "1Gi" || claim.Spec.StorageClassName != nil || claim.Namespace != "" || claim.Kind != "" {
				t.Errorf("claim %+v", claim)
			}
			if sts.Spec.Template.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != corev1.LabelHostname {
				t.Error("no default spreading over nodes")
			}
			if sts.OwnerReferences[0].UID != "uid-1" || !*sts.OwnerReferences[0].Controller {
				t.Errorf("owner %+v", sts.OwnerReferences)
			}
		}},
		"everything set": {func(k *kvv1.KVStore) {
			k.Spec.Replicas = ptr(int32(5))
			k.Spec.Image = "registry.example/kv:1"
			k.Spec.ImagePullPolicy = corev1.PullAlways
			k.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
			k.Spec.Storage = kvv1.StorageSpec{Size: ptr(resource.MustParse("10Gi")), StorageClassName: ptr("fast")}
			k.Spec.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0.5")}}
			k.Spec.NodeSelector = map[string]string{"disk": "ssd"}
			k.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}}
		}, func(t *testing.T, sts *appsv1.StatefulSet) {
			pod := sts.Spec.Template.Spec
			c := pod.Containers[0]
			if *sts.Spec.Replicas != 5 || c.Image != "registry.example/kv:1" || c.ImagePullPolicy != corev1.PullAlways || pod.ImagePullSecrets[0].Name != "regcred" {
				t.Errorf("replicas %d image %s policy %s secrets %v", *sts.Spec.Replicas, c.Image, c.ImagePullPolicy, pod.ImagePullSecrets)
			}
			if c.Resources.Requests.Cpu().String() != "500m" {
				t.Errorf("cpu %s", c.Resources.Requests.Cpu())
			}
			claim := sts.Spec.VolumeClaimTemplates[0]
			if claim.Spec.Resources.Requests.Storage().String() != "10Gi" || *claim.Spec.StorageClassName != "fast" {
				t.Errorf("claim %+v", claim.Spec)
			}
			if pod.NodeSelector["disk"] != "ssd" || pod.Affinity.PodAntiAffinity != nil || pod.Affinity.NodeAffinity == nil {
				t.Errorf("scheduling %v %+v", pod.NodeSelector, pod.Affinity)
			}
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ac := desiredStatefulSet(newKV(tc.edit), opts, "hash", replicas(newKV(tc.edit)))
			sts := convertAC[appsv1.StatefulSet](ac)
			tc.check(t, sts)
			// Invariants: what the restricted Pod Security Standard asks.
			pod := sts.Spec.Template.Spec
			c := pod.Containers[0].SecurityContext
			if !*pod.SecurityContext.RunAsNonRoot || *c.AllowPrivilegeEscalation || !*c.ReadOnlyRootFilesystem || c.Capabilities.Drop[0] != "ALL" || c.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("not restricted: %+v %+v", pod.SecurityContext, c)
			}
			if sts.Spec.Template.Annotations[ConfigHashAnnotation] != "hash" {
				t.Error("config hash annotation missing")
			}
		})
	}
}

func TestDesiredIngresses(t *testing.T) {
	kv := newKV(func(k *kvv1.KVStore) {
		k.Spec.Config.MaxValueBytes = 2 << 20
		k.Spec.Ingress = kvv1.IngressSpec{Enabled: true, Host: "kv.example.com", Annotations: map[string]string{"nginx.ingress.kubernetes.io/proxy-read-timeout": "120", "extra": "x"}}
	})
	ings := desiredIngresses(kv)
	main, watch := ings[0], ings[1]
	if *main.Name != "kv" || *watch.Name != "kv-watch" {
		t.Fatalf("names %s %s", *main.Name, *watch.Name)
	}
	checks := map[string]bool{
		"class defaults to nginx":         *main.Spec.IngressClassName == "nginx",
		"TLS from kv-tls":                 *main.Spec.TLS[0].SecretName == "kv-tls" && main.Spec.TLS[0].Hosts[0] == "kv.example.com",
		"body size = value limit":         main.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "2097152",
		"ssl redirect":                    main.Annotations["nginx.ingress.kubernetes.io/ssl-redirect"] == "true",
		"user annotation wins":            main.Annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "120",
		"user annotation added":           main.Annotations["extra"] == "x" && watch.Annotations["extra"] == "x",
		"/ to the client Service":         *main.Spec.Rules[0].HTTP.Paths[0].Path == "/" && *main.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name == "kv",
		"watch path":                      *watch.Spec.Rules[0].HTTP.Paths[0].Path == "/api/v1/watch",
		"watch unbuffered":                watch.Annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off",
		"watch long send timeout":         watch.Annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600",
		"user annotations are not shared": len(kv.Spec.Ingress.Annotations) == 2,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("Ingress: not %s", what)
		}
	}
}

func TestTLSHosts(t *testing.T) {
	got := strings.Join(tlsHosts(newKV(func(k *kvv1.KVStore) { k.Spec.Ingress.Host = "kv.example.com" }), BuildOptions{ClusterDomain: "corp.local"}), " ")
	for _, want := range []string{"kv.example.com", "kv.ns.svc", "kv.ns.svc.corp.local", "*.kv-peers.ns.svc", "*.kv-peers.ns.svc.corp.local", "kv"} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("hosts %q lack %q", got, want)
		}
	}
}

// newCA is a fresh Stable CA state issued at now.
func newCA(t *testing.T, now time.Time) caState {
	t.Helper()
	ca, err := decideCA(nil, nil, false, now)
	if err != nil || ca.reason != caIssued {
		t.Fatalf("decideCA: %q %v", ca.reason, err)
	}
	return ca
}

func TestDecideTLS(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hosts := []string{"kv.example.com", "kv.ns.svc", "*.kv-peers.ns.svc"}
	ca := newCA(t, now)
	first, why, err := decideTLS(ca, nil, hosts, now)
	if err != nil || why != tlsIssued {
		t.Fatalf("first: %q %v", why, err)
	}
	tlsData := map[string][]byte{"tls.crt": first.cert, "tls.key": first.key, "ca.crt": first.bundle}
	other, _, _ := decideTLS(newCA(t, now), nil, hosts, now)

	cases := map[string]struct {
		tls   map[string][]byte
		hosts []string
		now   time.Time
		want  string
	}{
		"valid: kept":                 {tlsData, hosts, now.Add(24 * time.Hour), tlsKept},
		"past two thirds: renewed":    {tlsData, hosts, now.Add(245 * 24 * time.Hour), tlsRenewed},
		"new host: re-issued":         {tlsData, append(hosts, "kv2.example.com"), now, tlsHostsChanged},
		"certificate from another CA": {map[string][]byte{"tls.crt": other.cert, "tls.key": other.key}, hosts, now, tlsIssued},
		"garbage certificate":         {map[string][]byte{"tls.crt": []byte("x"), "tls.key": []byte("y")}, hosts, now, tlsIssued},
		"certificate without key":     {map[string][]byte{"tls.crt": first.cert}, hosts, now, tlsIssued},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m, why, err := decideTLS(ca, tc.tls, tc.hosts, tc.now)
			if err != nil || why != tc.want {
				t.Fatalf("reason %q (%v), want %q", why, err, tc.want)
			}
			if !bytes.Equal(m.bundle, ca.signer.CertPEM) {
				t.Error("ca.crt is not the CA's bundle")
			}
			if (why == tlsKept) != bytes.Equal(m.cert, first.cert) {
				t.Errorf("certificate bytes changed = %v with reason %q", !bytes.Equal(m.cert, first.cert), why)
			}
			if _, still := checkServerCert(ca.signer.Cert, map[string][]byte{"tls.crt": m.cert, "tls.key": m.key}, tc.hosts, tc.now); still != tlsKept {
				t.Errorf("the result is not a valid certificate for the hosts at that time: %s", still)
			}
			if !m.renewAt.After(tc.now) || !m.notAfter.After(m.renewAt) {
				t.Errorf("renewAt %v notAfter %v at %v", m.renewAt, m.notAfter, tc.now)
			}
		})
	}
}

func TestCheckUserTLS(t *testing.T) {
	good, _, _ := decideTLS(newCA(t, time.Now()), nil, []string{"a"}, time.Now())
	cases := map[string]struct {
		typ  string
		data map[string][]byte
		want string
	}{
		"good":      {"kubernetes.io/tls", map[string][]byte{"tls.crt": good.cert, "tls.key": good.key}, ""},
		"opaque":    {"Opaque", map[string][]byte{"tls.crt": good.cert, "tls.key": good.key}, "want kubernetes.io/tls"},
		"no key":    {"kubernetes.io/tls", map[string][]byte{"tls.crt": good.cert}, "tls.key is missing"},
		"not a PEM": {"kubernetes.io/tls", map[string][]byte{"tls.crt": []byte("x"), "tls.key": good.key}, "key tls.crt"},
	}
	for name, tc := range cases {
		err := checkUserTLS(tc.typ, tc.data)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestDesiredStatus(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	sts := func(replicas, ready int32) *appsv1.StatefulSet {
		return &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Generation: 2},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: replicas, ReadyReplicas: ready, UpdatedReplicas: replicas,
				CurrentRevision: "r1", UpdateRevision: "r1"},
		}
	}
	type want struct{ available, progressing, degraded string }
	cases := map[string]struct {
		replicas int32
		sts      *appsv1.StatefulSet
		problem  *problem
		want     want
	}{
		"no StatefulSet yet":   {3, nil, nil, want{"NoReadyReplicas", "Creating", "AsExpected"}},
		"one of three ready":   {3, sts(3, 1), nil, want{"NotEnoughReadyReplicas", "WaitingForReadyReplicas", "AsExpected"}},
		"quorum of three":      {3, sts(3, 2), nil, want{"QuorumReady", "WaitingForReadyReplicas", "AsExpected"}},
		"all ready":            {3, sts(3, 3), nil, want{"QuorumReady", "RolloutComplete", "AsExpected"}},
		"scaling up":           {5, sts(3, 3), nil, want{"QuorumReady", "Scaling", "AsExpected"}},
		"a problem":            {1, sts(1, 1), &problem{"TLSSecretInvalid", "bad"}, want{"QuorumReady", "RolloutComplete", "TLSSecretInvalid"}},
		"rolling out":          {3, func() *appsv1.StatefulSet { s := sts(3, 3); s.Status.UpdateRevision = "r2"; return s }(), nil, want{"QuorumReady", "RollingOut", "AsExpected"}},
		"spec not yet noticed": {3, func() *appsv1.StatefulSet { s := sts(3, 3); s.Generation = 3; return s }(), nil, want{"QuorumReady", "RollingOut", "AsExpected"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := newKV(func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(tc.replicas) })
			st := desiredStatus(kv, statusInputs{sts: tc.sts, problem: tc.problem, names: namesFor(kv), now: now, endpoint: "e"})
			got := want{
				meta.FindStatusCondition(st.Conditions, kvv1.ConditionAvailable).Reason,
				meta.FindStatusCondition(st.Conditions, kvv1.ConditionProgressing).Reason,
				meta.FindStatusCondition(st.Conditions, kvv1.ConditionDegraded).Reason,
			}
			if got != tc.want {
				t.Errorf("reasons %+v, want %+v", got, tc.want)
			}
			if st.ObservedGeneration != 4 || st.Endpoint != "e" {
				t.Errorf("status %+v", st)
			}
			// Computing again from the result changes nothing: a second
			// reconcile writes no status.
			kv.Status = st
			if again := desiredStatus(kv, statusInputs{sts: tc.sts, problem: tc.problem, names: namesFor(kv), now: now.Add(time.Minute), endpoint: "e"}); !statusEqual(again, st) {
				t.Errorf("not stable:\n%+v\n%+v", st, again)
			}
		})
	}

	// Unready past the progress deadline: Degraded.
	kv := newKV(func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(3)) })
	kv.Status = desiredStatus(kv, statusInputs{sts: sts(3, 1), names: namesFor(kv), now: now})
	later := desiredStatus(kv, statusInputs{sts: sts(3, 1), names: namesFor(kv), now: now.Add(ProgressDeadline)})
	if c := meta.FindStatusCondition(later.Conditions, kvv1.ConditionDegraded); c.Reason != "ProgressDeadlineExceeded" || c.Status != metav1.ConditionTrue {
		t.Errorf("after the deadline: %+v", c)
	}
}
