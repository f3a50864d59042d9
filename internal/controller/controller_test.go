package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/kubetest"
)

var ctx = context.Background()

// sample is config/samples/kvstore_v1_kvstore.yaml in namespace ns.
func sample(t *testing.T, ns string) *kvv1.KVStore {
	t.Helper()
	kv := &kvv1.KVStore{}
	b := mustRead(t, kubetest.Root()+"/config/samples/kvstore_v1_kvstore.yaml")
	if err := yaml.UnmarshalStrict(b, kv); err != nil {
		t.Fatalf("sample: %v", err)
	}
	kv.Namespace = ns
	return kv
}

func create(t *testing.T, kv *kvv1.KVStore) *kvv1.KVStore {
	t.Helper()
	if err := k8s.Create(ctx, kv); err != nil {
		t.Fatalf("create KVStore: %v", err)
	}
	return kv
}

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

// get reads name into o, failing the condition (not the test) when absent.
func get(ns, name string, o client.Object) error { return k8s.Get(ctx, key(ns, name), o) }

// children lists every child the operator makes for kv with the operator's
// own TLS and token.
func children(kv *kvv1.KVStore) map[string]client.Object {
	n := kv.Name
	return map[string]client.Object{
		n + "-config":    &corev1.ConfigMap{},
		n + "-peers":     &corev1.Service{},
		n:                &corev1.Service{},
		n + "-tls":       &corev1.Secret{},
		n + "-ca":        &corev1.Secret{},
		n + "-ca-bundle": &corev1.Secret{},
		n + "-auth":      &corev1.Secret{},
		n + "-pod-tls":   &corev1.Secret{},
		n + "-tokens":    &corev1.Secret{},
	}
}

func waitChildren(t *testing.T, kv *kvv1.KVStore) {
	t.Helper()
	objs := children(kv)
	objs["sts "+kv.Name] = &appsv1.StatefulSet{}
	objs["pdb "+kv.Name] = &policyv1.PodDisruptionBudget{}
	if kv.Spec.Ingress.Enabled {
		objs["ingress "+kv.Name] = &networkingv1.Ingress{}
		objs["ingress "+kv.Name+"-watch"] = &networkingv1.Ingress{}
	}
	for label, o := range objs {
		name := label[strings.LastIndex(label, " ")+1:]
		eventually(t, "child "+label, func() error {
			if err := get(kv.Namespace, name, o); err != nil {
				return err
			}
			ref := metav1.GetControllerOf(o)
			if ref == nil || ref.UID != kv.UID || ref.Kind != "KVStore" || ref.APIVersion != "kvstore.dev/v1" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
				return fmt.Errorf("%s has controller reference %+v, want the KVStore %s", label, ref, kv.UID)
			}
			return nil
		})
	}
}

func TestSampleMakesEveryChild(t *testing.T) {
	ns := newNamespace(t)
	kv := create(t, sample(t, ns))
	waitChildren(t, kv)

	sts := &appsv1.StatefulSet{}
	if err := get(ns, "demo", sts); err != nil {
		t.Fatal(err)
	}
	spec := sts.Spec
	c := spec.Template.Spec.Containers[0]
	checks := map[string]bool{
		"replicas 3":                  *spec.Replicas == 3,
		"serviceName demo-peers":      spec.ServiceName == "demo-peers",
		"default image":               c.Image == testOpts.DefaultImage,
		"non-root":                    *spec.Template.Spec.SecurityContext.RunAsNonRoot && *c.SecurityContext.RunAsNonRoot,
		"read-only root":              *c.SecurityContext.ReadOnlyRootFilesystem,
		"no privilege escalation":     !*c.SecurityContext.AllowPrivilegeEscalation,
		"readiness /readyz":           c.ReadinessProbe.HTTPGet.Path == "/readyz",
		"liveness /healthz":           c.LivenessProbe.HTTPGet.Path == "/healthz",
		"2Gi claim":                   spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().Cmp(resource.MustParse("2Gi")) == 0,
		"retain on delete":            spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted == appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		"retain on scale down":        spec.PersistentVolumeClaimRetentionPolicy.WhenScaled == appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		"config hash annotation":      len(spec.Template.Annotations[ConfigHashAnnotation]) == 32,
		"token from demo-auth":        envSecret(c, "KVSTORE_ADMIN_TOKEN") == "demo-auth",
		"peer token from demo-peer":   envSecret(c, "KVSTORE_PEER_TOKEN") == "demo-peer",
		"node id is the pod name":     slices.Contains(c.Args, "--node-id=$(POD_NAME)"),
		"resources from spec":         c.Resources.Limits.Memory().Cmp(resource.MustParse("512Mi")) == 0,
		"no service account token":    !*spec.Template.Spec.AutomountServiceAccountToken,
		"config mounted read-only":    c.VolumeMounts[1].MountPath == configDir && c.VolumeMounts[1].ReadOnly,
		"selector is the pod labels":  spec.Selector.MatchLabels["app.kubernetes.io/instance"] == "demo",
		"parallel pod management":     spec.PodManagementPolicy == appsv1.ParallelPodManagement,
		"spread over nodes (default)": spec.Template.Spec.Affinity.PodAntiAffinity != nil,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("StatefulSet: not %s", what)
		}
	}

	cm := &corev1.ConfigMap{}
	if err := get(ns, "demo-config", cm); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	if err := config.Parse([]byte(cm.Data[configFile]), &cfg); err != nil {
		t.Fatalf("the rendered config does not load in the server: %v\n%s", err, cm.Data[configFile])
	}
	// What the pod's arguments and environment add.
	cfg.Cluster.NodeID, cfg.Cluster.PeerAdvertise, cfg.Cluster.PeerToken = "demo-1", "demo-1.demo-peers."+ns+".svc.cluster.local:7000", "from-the-peer-secret-0123456789"
	if err := cfg.Validate(); err != nil {
		t.Errorf("the rendered config is invalid: %v", err)
	}

	ing := &networkingv1.Ingress{}
	if err := get(ns, "demo", ing); err != nil {
		t.Fatal(err)
	}
	if *ing.Spec.IngressClassName != "nginx" || ing.Spec.TLS[0].SecretName != "demo-tls" || ing.Spec.Rules[0].Host != "kv.example.com" ||
		ing.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"] != "1048576" {
		t.Errorf("Ingress: %+v %v", ing.Spec, ing.Annotations)
	}
	watch := &networkingv1.Ingress{}
	if err := get(ns, "demo-watch", watch); err != nil {
		t.Fatal(err)
	}
	if watch.Spec.Rules[0].HTTP.Paths[0].Path != "/api/v1/watch" || watch.Annotations["nginx.ingress.kubernetes.io/proxy-buffering"] != "off" {
		t.Errorf("watch Ingress: %+v %v", watch.Spec.Rules, watch.Annotations)
	}

	tls := &corev1.Secret{}
	if err := get(ns, "demo-tls", tls); err != nil {
		t.Fatal(err)
	}
	hosts := []string{"kv.example.com", "demo." + ns + ".svc", "demo-1.demo-peers." + ns + ".svc"}
	if _, why := checkServerCert(mustCert(t, tls.Data["ca.crt"]), tls.Data, hosts, time.Now()); why != tlsKept {
		t.Errorf("the generated certificate does not serve every host of %v (%s)", hosts, why)
	}
	if tls.Type != corev1.SecretTypeTLS {
		t.Errorf("TLS Secret type %s", tls.Type)
	}
	auth := &corev1.Secret{}
	if err := get(ns, "demo-auth", auth); err != nil {
		t.Fatal(err)
	}
	if len(auth.Data[AuthTokenKey]) < 40 {
		t.Errorf("generated token is %d bytes", len(auth.Data[AuthTokenKey]))
	}

	sm := &unstructured.Unstructured{}
	sm.SetGroupVersionKind(serviceMonitorGVK)
	eventually(t, "ServiceMonitor (its CRD is installed)", func() error { return get(ns, "demo", sm) })

	eventually(t, "status", func() error {
		got := &kvv1.KVStore{}
		if err := get(ns, "demo", got); err != nil {
			return err
		}
		st := got.Status
		if st.ObservedGeneration != got.Generation || st.Selector != "app.kubernetes.io/instance=demo,app.kubernetes.io/name=kvstore" ||
			st.Endpoint != "https://kv.example.com/" || st.TLSSecretName != "demo-tls" || st.AuthSecretName != "demo-auth" || st.CertificateNotAfter == nil {
			return fmt.Errorf("status %+v", st)
		}
		if c := meta.FindStatusCondition(st.Conditions, kvv1.ConditionDegraded); c == nil || c.Status != metav1.ConditionFalse {
			return fmt.Errorf("Degraded: %+v", c)
		}
		return nil
	})
}

func TestSpecChangesReachChildren(t *testing.T) {
	ns := newNamespace(t)
	kv := sample(t, ns)
	kv.Spec.Ingress = kvv1.IngressSpec{}
	create(t, kv)
	waitChildren(t, kv)
	sts := &appsv1.StatefulSet{}
	if err := get(ns, "demo", sts); err != nil {
		t.Fatal(err)
	}
	oldHash := sts.Spec.Template.Annotations[ConfigHashAnnotation]

	patch(t, kv, func(kv *kvv1.KVStore) {
		kv.Spec.Image = "registry.example/kvstore:v2"
		kv.Spec.Config.LogLevel = "debug"
		kv.Spec.Config.MaxValueBytes = 4 << 20
		kv.Spec.Ingress = kvv1.IngressSpec{Enabled: true, Host: "kv2.example.com", Annotations: map[string]string{"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}}
		kv.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "kv", Effect: corev1.TaintEffectNoSchedule}}
	})
	eventually(t, "StatefulSet follows the spec", func() error {
		if err := get(ns, "demo", sts); err != nil {
			return err
		}
		c := sts.Spec.Template.Spec.Containers[0]
		switch {
		case c.Image != "registry.example/kvstore:v2":
			return fmt.Errorf("image %s", c.Image)
		case sts.Spec.Template.Annotations[ConfigHashAnnotation] == oldHash:
			return errors.New("config hash unchanged: pods would not roll")
		case len(sts.Spec.Template.Spec.Tolerations) != 1:
			return fmt.Errorf("tolerations %v", sts.Spec.Template.Spec.Tolerations)
		}
		return nil
	})
	eventually(t, "ConfigMap follows the spec", func() error {
		cm := &corev1.ConfigMap{}
		if err := get(ns, "demo-config", cm); err != nil {
			return err
		}
		cfg := config.Default()
		if err := config.Parse([]byte(cm.Data[configFile]), &cfg); err != nil {
			return err
		}
		if cfg.Log.Level != "debug" || cfg.Limits.MaxValueBytes != 4<<20 {
			return fmt.Errorf("config %+v", cfg)
		}
		return nil
	})
	eventually(t, "Ingress appears, user annotation wins", func() error {
		ing := &networkingv1.Ingress{}
		if err := get(ns, "demo", ing); err != nil {
			return err
		}
		if ing.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"] != "8m" || ing.Spec.Rules[0].Host != "kv2.example.com" {
			return fmt.Errorf("ingress %v %v", ing.Annotations, ing.Spec.Rules)
		}
		return nil
	})
	eventually(t, "certificate re-issued for the new host", func() error {
		tls := &corev1.Secret{}
		if err := get(ns, "demo-tls", tls); err != nil {
			return err
		}
		if _, why := checkServerCert(mustCert(t, tls.Data["ca.crt"]), tls.Data, []string{"kv2.example.com"}, time.Now()); why != tlsKept {
			return fmt.Errorf("certificate: %s", why)
		}
		return nil
	})

	patch(t, kv, func(kv *kvv1.KVStore) { kv.Spec.Ingress.Enabled = false })
	for _, name := range []string{"demo", "demo-watch"} {
		eventually(t, "Ingress "+name+" deleted when disabled", func() error {
			if err := get(ns, name, &networkingv1.Ingress{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("still there (%v)", err)
			}
			return nil
		})
	}
}

func TestScaleSubresource(t *testing.T) {
	ns := newNamespace(t)
	kv := sample(t, ns)
	kv.Spec.Replicas = ptr(int32(1))
	create(t, kv)
	waitChildren(t, kv)
	// What `kubectl scale kvs/demo --replicas=5` does.
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 5}}
	if err := k8s.SubResource("scale").Update(ctx, kv, client.WithSubResourceBody(scale)); err != nil {
		t.Fatalf("scale: %v", err)
	}
	eventually(t, "StatefulSet and PDB scaled", func() error {
		sts := &appsv1.StatefulSet{}
		pdb := &policyv1.PodDisruptionBudget{}
		if err := get(ns, "demo", sts); err != nil {
			return err
		}
		if err := get(ns, "demo", pdb); err != nil {
			return err
		}
		if *sts.Spec.Replicas != 5 {
			return fmt.Errorf("replicas %d", *sts.Spec.Replicas)
		}
		// No servers answer here (the suite's reconciler has no Cluster),
		// so no voter is known: the budget allows no eviction.
		if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 0 {
			return fmt.Errorf("pdb %+v, want maxUnavailable 0 (no voter known)", pdb.Spec)
		}
		return nil
	})
	if err := k8s.SubResource("scale").Get(ctx, kv, scale); err != nil || scale.Spec.Replicas != 5 {
		t.Errorf("read scale: %v %+v", err, scale)
	}
}

func patch(t *testing.T, kv *kvv1.KVStore, edit func(*kvv1.KVStore)) {
	t.Helper()
	eventually(t, "update KVStore", func() error {
		cur := &kvv1.KVStore{}
		if err := get(kv.Namespace, kv.Name, cur); err != nil {
			return err
		}
		edit(cur)
		return k8s.Update(ctx, cur)
	})
}

func TestInvalidObjectsAreRefused(t *testing.T) {
	ns := newNamespace(t)
	valid := func() *kvv1.KVStore {
		return &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: ns}}
	}
	cases := map[string]struct {
		edit func(*kvv1.KVStore)
		want string
	}{
		"zero replicas":         {func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(0)) }, "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"},
		"ten replicas":          {func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(10)) }, "spec.replicas in body should be less than or equal to 9"},
		"ingress without host":  {func(k *kvv1.KVStore) { k.Spec.Ingress.Enabled = true }, "spec.ingress.host must be a lower-case DNS name"},
		"ingress bad host":      {func(k *kvv1.KVStore) { k.Spec.Ingress = kvv1.IngressSpec{Enabled: true, Host: "KV_store.example"} }, "spec.ingress.host must be a lower-case DNS name"},
		"image with spaces":     {func(k *kvv1.KVStore) { k.Spec.Image = "kvstore latest" }, "spec.image must not contain spaces"},
		"bad log level":         {func(k *kvv1.KVStore) { k.Spec.Config.LogLevel = "loud" }, `spec.config.logLevel: Unsupported value: "loud"`},
		"value limit too large": {func(k *kvv1.KVStore) { k.Spec.Config.MaxValueBytes = 1 << 30 }, "spec.config.maxValueBytes in body should be less than or equal to 67108864"},
		"secret and issuer": {func(k *kvv1.KVStore) {
			k.Spec.TLS = kvv1.TLSSpec{SecretName: "mine", IssuerRef: &kvv1.IssuerReference{Name: "letsencrypt"}}
		}, "set at most one of spec.tls.secretName and spec.tls.issuerRef"},
		"issuer kind":     {func(k *kvv1.KVStore) { k.Spec.TLS.IssuerRef = &kvv1.IssuerReference{Name: "x", Kind: "Vault"} }, `spec.tls.issuerRef.kind: Unsupported value: "Vault"`},
		"long name":       {func(k *kvv1.KVStore) { k.Name = strings.Repeat("a", 53) }, "metadata.name must be at most 52 characters"},
		"bad pull policy": {func(k *kvv1.KVStore) { k.Spec.ImagePullPolicy = "Sometimes" }, `spec.imagePullPolicy: Unsupported value: "Sometimes"`},
		"token role":      {func(k *kvv1.KVStore) { k.Spec.Auth.Tokens = []kvv1.TokenSpec{tokenSpec("a", "root")} }, `spec.auth.tokens[0].role: Unsupported value: "root"`},
		"token prefix": {func(k *kvv1.KVStore) {
			k.Spec.Auth.Tokens = []kvv1.TokenSpec{tokenSpec("a", "readonly", "app")}
		}, "spec.auth.tokens[0].prefixes[0]: Invalid value"},
		"token name": {func(k *kvv1.KVStore) { k.Spec.Auth.Tokens = []kvv1.TokenSpec{tokenSpec("env:admin", "admin")} }, "spec.auth.tokens[0].name: Invalid value"},
		"token names repeat": {func(k *kvv1.KVStore) {
			k.Spec.Auth.Tokens = []kvv1.TokenSpec{tokenSpec("a", "admin"), tokenSpec("a", "readonly")}
		}, "spec.auth.tokens[1]: Duplicate value"},
		"token secret key": {func(k *kvv1.KVStore) {
			k.Spec.Auth.Tokens = []kvv1.TokenSpec{{Name: "a", Role: "admin", SecretRef: kvv1.SecretKeyRef{Name: "s"}}}
		}, "spec.auth.tokens[0].secretRef.key"},
		"backup rate below 1 MiB/s": {func(k *kvv1.KVStore) {
			k.Spec.Backup = &kvv1.BackupSpec{Destination: kvv1.BackupDestination{PersistentVolumeClaim: &kvv1.PVCDestination{ClaimName: "b"}}, MaxRate: ptr[int64](64 << 10)}
		}, "spec.backup.maxRate must be 0 (no limit) or at least 1048576 bytes per second (1 MiB/s)"},
		"negative backup rate": {func(k *kvv1.KVStore) {
			k.Spec.Backup = &kvv1.BackupSpec{Destination: kvv1.BackupDestination{PersistentVolumeClaim: &kvv1.PVCDestination{ClaimName: "b"}}, MaxRate: ptr[int64](-1)}
		}, "spec.backup.maxRate in body should be greater than or equal to 0"},
		"65 tokens": {func(k *kvv1.KVStore) {
			for i := range 65 {
				k.Spec.Auth.Tokens = append(k.Spec.Auth.Tokens, tokenSpec(fmt.Sprintf("t%d", i), "readonly"))
			}
		}, "spec.auth.tokens: Too many: 65: must have at most 64 items"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := valid()
			tc.edit(kv)
			err := k8s.Create(ctx, kv)
			if err == nil {
				_ = k8s.Delete(ctx, kv)
				t.Fatalf("created; want refused with %q", tc.want)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant Invalid containing %q", err, tc.want)
			}
		})
	}
	// An empty image is omitted by the Go client; send it as JSON.
	raw := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kvstore.dev/v1", "kind": "KVStore",
		"metadata": map[string]any{"name": "empty-image", "namespace": ns},
		"spec":     map[string]any{"image": ""},
	}}
	if err := k8s.Create(ctx, raw); err == nil || !strings.Contains(err.Error(), "spec.image in body should be at least 1 chars long") {
		t.Errorf("empty image: %v", err)
	}

	t.Run("storage size is immutable", func(t *testing.T) {
		kv := valid()
		kv.Name = "immutable"
		create(t, kv)
		kv.Spec.Storage.Size = ptr(resource.MustParse("5Gi"))
		err := k8s.Update(ctx, kv)
		if err == nil || !strings.Contains(err.Error(), "spec.storage.size is immutable after creation") {
			t.Fatalf("update storage size: %v", err)
		}
		cur := &kvv1.KVStore{}
		if err := get(ns, "immutable", cur); err != nil {
			t.Fatal(err)
		}
		if cur.Spec.Storage.Size.String() != "1Gi" || *cur.Spec.Replicas != 1 || cur.Spec.Config.MaxValueBytes != 1<<20 || cur.Spec.Ingress.ClassName != "nginx" {
			t.Errorf("defaults not applied: %+v", cur.Spec)
		}
	})
}

// envSecret is the Secret an environment variable of c comes from.
func envSecret(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return e.ValueFrom.SecretKeyRef.Name
		}
	}
	return ""
}

// tokenSpec is a spec.auth.tokens entry reading Secret s key token.
func tokenSpec(name, role string, prefixes ...string) kvv1.TokenSpec {
	return kvv1.TokenSpec{Name: name, Role: role, Prefixes: prefixes, SecretRef: kvv1.SecretKeyRef{Name: "s", Key: "token"}}
}
