package controller

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

// observing builds an observation of kv's namespace from objects; owned
// ones get kv as their controller.
type observing struct {
	kv  *kvv1.KVStore
	obs *observed
}

func observe(kv *kvv1.KVStore) *observing {
	return &observing{kv, &observed{objects: map[objKey]client.Object{}, installed: map[schema.GroupVersionKind]bool{}}}
}

func (o *observing) has(owned bool, objs ...client.Object) *observing {
	for _, obj := range objs {
		obj.SetNamespace(o.kv.Namespace)
		if owned {
			obj.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "kvstore.dev/v1", Kind: "KVStore", Name: o.kv.Name, UID: o.kv.UID, Controller: ptr(true)}})
		}
		o.obs.objects[keyOf(obj)] = obj
	}
	return o
}

func secret(name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Type: corev1.SecretTypeTLS, Data: data}
}

func token(name string) *corev1.Secret {
	return secret(name, map[string][]byte{AuthTokenKey: []byte("token-of-" + name)})
}

func TestPlan(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	plain := func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(3)) }
	kv := newKV(plain)
	// A certificate issued a month ago, valid for now and for kv's hosts.
	issued := now.AddDate(0, -1, 0)
	caSt, err := decideCA(nil, nil, false, issued)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := decideTLS(caSt, nil, tlsHosts(kv, testOpts), issued)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := decidePodTLS(caSt, nil, "kv", podLeaves(kv, testOpts, 3), issued)
	if err != nil {
		t.Fatal(err)
	}
	ca := secret("kv-ca", caSt.data())
	tls := secret("kv-tls", map[string][]byte{"tls.crt": m.cert, "tls.key": m.key, caCertKey: m.bundle})
	podTLS := secret("kv-pod-tls", pt.data)
	settled := func(o *observing) *observing {
		return o.has(true, token("kv-auth"), token("kv-peer"), ca, tls, podTLS)
	}
	sts := func(replicas int32) *appsv1.StatefulSet {
		return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "kv"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr(replicas)}}
	}
	view := func(ms ...wire.Member) *wire.ClusterStatus { return &wire.ClusterStatus{LeaderID: "kv-0", Members: ms} }
	every := []string{"Secret kv-auth", "Secret kv-ca", "Secret kv-ca-bundle", "Secret kv-tls", "Secret kv-peer", "ConfigMap kv-config",
		"Service kv-peers", "Service kv", "NetworkPolicy kv", "Secret kv-tokens", "Secret kv-pod-tls", "StatefulSet kv", "PodDisruptionBudget kv",
		"-Ingress kv", "-Ingress kv-watch"}

	cases := map[string]struct {
		edit    func(*kvv1.KVStore)
		obs     func(*observing) *observing
		at      time.Time
		view    *wire.ClusterStatus
		want    []string // children, "-" before one deleted
		events  []string // reasons of the events written with them
		tls     bool     // the operator issues the certificate
		step    string   // "promote kv-1", "remove kv-2", "sts 3"
		problem string
	}{
		"new KVStore": {
			want: every, events: []string{"TokenGenerated", "CAIssued", "CertificateIssued", "TokenGenerated", "PodCertificatesIssued"}, tls: true, step: "sts 3",
		},
		"settled":                      {obs: settled, want: every, tls: true, step: "sts 3"},
		"certificates due for renewal": {obs: settled, at: now.AddDate(1, 0, 0), want: every, events: []string{"CertificateRenewed", "PodCertificatesIssued"}, tls: true, step: "sts 3"},
		"scale up adds peer certificates": {
			edit: func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(5)) },
			obs:  settled, want: every, events: []string{"PodCertificatesIssued"}, tls: true, step: "sts 5",
		},
		"a token Secret missing": {
			edit: func(k *kvv1.KVStore) {
				k.Spec.Auth.Tokens = []kvv1.TokenSpec{{Name: "app", Role: "readonly", SecretRef: kvv1.SecretKeyRef{Name: "app-token", Key: "token"}}}
			},
			obs: settled, want: every[:9], tls: true, problem: "TokenSecretNotFound",
		},
		"ingress and ServiceMonitor": {
			edit: func(k *kvv1.KVStore) { k.Spec.Ingress = kvv1.IngressSpec{Enabled: true, Host: "kv.example.com"} },
			obs: func(o *observing) *observing {
				o.obs.installed[serviceMonitorGVK] = true
				return settled(o)
			},
			want: append(slices.Replace(slices.Clone(every), 13, 15, "Ingress kv", "Ingress kv-watch"), "ServiceMonitor kv"),
			// The certificate is re-issued for the Ingress host.
			events: []string{"CertificateHostsChanged"}, tls: true, step: "sts 3",
		},
		"user Secrets": {
			edit: func(k *kvv1.KVStore) { k.Spec.TLS.SecretName, k.Spec.Auth.SecretName = "mine-tls", "mine-auth" },
			obs: func(o *observing) *observing {
				return o.has(false, token("mine-auth"), secret("mine-tls", tls.Data)).has(true, token("kv-peer"), ca, podTLS)
			},
			want: slices.Delete(slices.Delete(slices.Clone(every), 3, 4), 0, 1), step: "sts 3",
		},
		"user auth Secret missing": {
			edit:    func(k *kvv1.KVStore) { k.Spec.Auth.SecretName = "mine-auth" },
			problem: "AuthSecretNotFound",
		},
		"user TLS Secret invalid": {
			edit: func(k *kvv1.KVStore) { k.Spec.TLS.SecretName = "mine-tls" },
			obs: func(o *observing) *observing {
				return o.has(true, token("kv-auth")).has(false, secret("mine-tls", nil))
			},
			want:    every[:3],
			events:  []string{"CAIssued"},
			problem: "TLSSecretInvalid",
		},
		"cert-manager missing": {
			edit:    func(k *kvv1.KVStore) { k.Spec.TLS.IssuerRef = &kvv1.IssuerReference{Name: "le"} },
			obs:     func(o *observing) *observing { return o.has(true, token("kv-auth")) },
			want:    every[:3],
			events:  []string{"CAIssued"},
			problem: "CertManagerNotInstalled",
		},
		"cert-manager": {
			edit: func(k *kvv1.KVStore) { k.Spec.TLS.IssuerRef = &kvv1.IssuerReference{Name: "le"} },
			obs: func(o *observing) *observing {
				o.obs.installed[certificateGVK] = true
				return o.has(true, token("kv-auth"), token("kv-peer"))
			},
			want:   slices.Replace(slices.Clone(every), 3, 4, "Certificate kv"),
			events: []string{"CAIssued", "PodCertificatesIssued"}, step: "sts 3",
		},
		"someone else's peer Secret": {
			obs:     func(o *observing) *observing { return settled(o).has(false, token("kv-peer")) },
			want:    every[:4],
			tls:     true,
			problem: "ChildConflict",
		},
		"promote a caught-up server": {
			obs:  func(o *observing) *observing { return settled(o).has(true, sts(3)) },
			view: view(member("kv-0", "Voter", 1000), member("kv-1", "Nonvoter", 1000), member("kv-2", "Nonvoter", 10)),
			want: every, tls: true, step: "promote kv-1",
		},
		"scale down removes a member first": {
			edit: func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(1)) },
			obs:  func(o *observing) *observing { return settled(o).has(true, sts(3)) },
			view: view(member("kv-0", "Voter", 1000), member("kv-1", "Voter", 1000), member("kv-2", "Voter", 1000)),
			want: every, tls: true, step: "remove kv-2",
		},
		"scale down without a view keeps the pods": {
			edit: func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(1)) },
			obs:  func(o *observing) *observing { return settled(o).has(true, sts(3)) },
			want: every, tls: true, step: "sts 3",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := newKV(plain)
			if tc.edit != nil {
				tc.edit(kv)
			}
			o := observe(kv)
			if tc.obs != nil {
				o = tc.obs(o)
			}
			o.obs.view = tc.view
			at := now
			if !tc.at.IsZero() {
				at = tc.at
			}
			p, err := planFor(kv, o.obs, testOpts, at, bytes.NewReader(make([]byte, 64)))
			var prob *problem
			if errors.As(err, &prob) != (tc.problem != "") || prob != nil && prob.reason != tc.problem {
				t.Fatalf("error %v, want problem %q", err, tc.problem)
			}
			var got, events []string
			for _, c := range p.children {
				k := c.key.kind + " " + c.key.name
				if c.desired == nil {
					k = "-" + k
				}
				got = append(got, k)
				if c.event != nil {
					events = append(events, c.event.reason)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("children\n%v\nwant\n%v", got, tc.want)
			}
			if !slices.Equal(events, tc.events) {
				t.Errorf("events %v, want %v", events, tc.events)
			}
			if (p.tls != nil) != tc.tls {
				t.Errorf("operator-issued certificate %v, want %v", p.tls != nil, tc.tls)
			}
			step := ""
			switch s := p.step; {
			case s == nil:
			case s.promote != nil:
				step = "promote " + s.promote.ID
			case s.remove != nil:
				step = "remove " + s.remove.ID
			default:
				step = fmt.Sprintf("sts %d", s.stsReplicas)
			}
			if step != tc.step {
				t.Errorf("membership step %q, want %q", step, tc.step)
			}
		})
	}
}
