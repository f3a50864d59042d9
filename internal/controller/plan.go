package controller

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/certs"
)

// plan is what one reconcile does, decided from the KVStore and the
// observation alone.
type plan struct {
	// children are the objects to apply (or delete), in dependency order:
	// Secrets and config before the StatefulSet that mounts them.
	children []child
	// tls is the operator-issued certificate, nil when the user or
	// cert-manager provides it.
	tls *tlsMaterial
	// ca is the CA state (decideCA), nil when the plan stopped before it.
	ca *caState
	// renewAt is the earliest time a certificate or CA phase falls due
	// (zero when none): the reconcile is requeued for it.
	renewAt time.Time
	// step is the membership step, nil when the plan stopped before the
	// StatefulSet.
	step *membershipStep
	// recovery is the recovery step (recovery.go), nil when the plan
	// stopped before the StatefulSet.
	recovery *recoveryStep
	// bootstrap is the restore of spec.bootstrap (planBootstrap), nil
	// when the plan stopped before it.
	bootstrap *bootstrapPlan
}

// planFor plans the reconcile of kv from obs at now. It is pure but for
// randomness: new tokens come from rnd (crypto/rand when nil), new keys
// from crypto/rand. When something keeps kv from its spec (a *problem), or
// a token or certificate cannot be made, it returns the plan up to that
// point with the error: the objects before it are still applied.
func planFor(kv *kvv1.KVStore, obs *observed, o BuildOptions, now time.Time, rnd io.Reader) (plan, error) {
	n := namesFor(kv)
	p := &plan{}
	token, err := p.authToken(kv, n, obs, rnd)
	if err != nil {
		return *p, err
	}
	ca, err := p.caState(kv, n, obs, now)
	if err != nil {
		return *p, err
	}
	if err := p.certificate(kv, n, obs, o, ca, now); err != nil {
		return *p, err
	}
	peerToken, err := p.generatedToken(kv, obs, n.peer, desiredPeerSecret, rnd)
	if err != nil {
		return *p, err
	}
	liveCM, _ := obs.objects[objKey{"ConfigMap", n.config}].(*corev1.ConfigMap)
	cm := desiredConfigMap(kv, o, clusterFormed(kv, obs.view, liveCM))
	p.add(typedChild(cm, corev1ac.ExtractConfigMap),
		typedChild(desiredPeersService(kv), corev1ac.ExtractService),
		typedChild(desiredClientService(kv), corev1ac.ExtractService))
	// The NetworkPolicy before the StatefulSet: the pods start fenced.
	np := typedChild(desiredNetworkPolicy(kv, o), networkingv1ac.ExtractNetworkPolicy)
	if !networkPolicyEnabled(kv) {
		np = child{key: np.key} // deleted
	}
	p.add(np)

	// A new KVStore from a backup: the StatefulSet waits for the restore.
	bp := planBootstrap(kv, obs.statefulSet(n) != nil, obs.bootstrap, o)
	p.bootstrap = &bp
	switch {
	case bp.problem != nil:
		return *p, bp.problem
	case bp.step != bootstrapDone:
		return *p, nil
	}

	var current int32
	if sts := obs.statefulSet(n); sts != nil && sts.Spec.Replicas != nil {
		current = *sts.Spec.Replicas
	}
	step := nextStep(kv, current, obs.view)
	tokens, err := renderTokens(kv, obs.secret)
	if err != nil {
		return *p, err
	}
	p.add(typedChild(desiredTokensSecret(kv, tokens), corev1ac.ExtractSecret))
	if err := p.podTLS(kv, n, obs, o, ca, max(current, step.stsReplicas, replicas(kv)), now); err != nil {
		return *p, err
	}
	p.step = &step
	rs := decideRecovery(kv, recoveryObs{view: obs.view, probed: obs.probed, pods: obs.pods, stsReplicas: current}, now)
	p.recovery = &rs
	if rs.requeue > 0 {
		p.due(now.Add(rs.requeue))
	}
	hash := configHash(cm.Data[configFile], token, peerToken)
	p.add(typedChild(desiredStatefulSet(kv, o, hash, step.stsReplicas), extractStatefulSet))

	in := pdbInputs{view: obs.view, step: step, lastMembers: kv.Status.Members}
	if pdb, ok := obs.objects[objKey{"PodDisruptionBudget", n.kv}].(*policyv1.PodDisruptionBudget); ok {
		in.live = liveMaxUnavailable(pdb, kv)
	}
	p.add(typedChild(desiredPDB(kv, pdbMaxUnavailable(kv, in)), policyv1ac.ExtractPodDisruptionBudget))
	for _, ing := range desiredIngresses(kv) {
		c := typedChild(ing, networkingv1ac.ExtractIngress)
		if !kv.Spec.Ingress.Enabled {
			c = child{key: c.key} // deleted
		}
		p.add(c)
	}
	if obs.installed[serviceMonitorGVK] {
		p.add(looseChild(desiredServiceMonitor(kv)))
	}
	return *p, nil
}

func (p *plan) add(cs ...child) { p.children = append(p.children, cs...) }

// authToken plans the admin token: read from the user's Secret, or from
// the operator's <name>-auth, which is created with a random token when
// missing and otherwise left as it is.
func (p *plan) authToken(kv *kvv1.KVStore, n names, obs *observed, rnd io.Reader) (string, error) {
	if !n.userAuth {
		return p.generatedToken(kv, obs, n.auth, desiredAuthSecret, rnd)
	}
	switch s := obs.secret(n.auth); {
	case s == nil:
		return "", &problem{"AuthSecretNotFound", fmt.Sprintf("Secret %s (spec.auth.secretName) does not exist in namespace %s; create it with the admin token under key %q", n.auth, n.namespace, AuthTokenKey)}
	case len(s.Data[AuthTokenKey]) == 0:
		return "", &problem{"AuthSecretInvalid", fmt.Sprintf("Secret %s (spec.auth.secretName) has no key %q holding the admin token", n.auth, AuthTokenKey)}
	default:
		return string(s.Data[AuthTokenKey]), nil
	}
}

// generatedToken plans the operator's Secret name holding a token: created
// with a random token when missing (or without one) and otherwise left as
// it is, so a token is never rotated behind the user's back.
func (p *plan) generatedToken(kv *kvv1.KVStore, obs *observed, name string, build func(*kvv1.KVStore, string) *corev1ac.SecretApplyConfiguration, rnd io.Reader) (string, error) {
	token := ""
	if s := obs.secret(name); s != nil {
		if !metav1IsControlledBy(s, kv) {
			return "", &problem{"ChildConflict", fmt.Sprintf("Secret %s exists and is not owned by this KVStore; delete it or bring your own through the spec", name)}
		}
		token = string(s.Data[AuthTokenKey])
	}
	var generated *event
	if token == "" {
		var err error
		if token, err = newToken(rnd); err != nil {
			return "", err
		}
		generated = &event{"TokenGenerated", "Generate", "generated a random token into Secret " + name}
	}
	p.add(typedChild(build(kv, token), corev1ac.ExtractSecret).withEvent(generated))
	return token, nil
}

// newToken makes a random token: 32 bytes from rnd (crypto/rand when nil),
// base64url.
func newToken(rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("generate admin token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// due makes p requeue at t at the latest.
func (p *plan) due(t time.Time) {
	if p.renewAt.IsZero() || t.Before(p.renewAt) {
		p.renewAt = t
	}
}

// ownedData is the data of the operator's Secret name, nil when absent; a
// Secret of that name the KVStore does not control is a problem (what to
// do instead is fix).
func ownedData(kv *kvv1.KVStore, obs *observed, name, fix string) (map[string][]byte, error) {
	s := obs.secret(name)
	switch {
	case s == nil:
		return nil, nil
	case !metav1IsControlledBy(s, kv):
		return nil, &problem{"ChildConflict", fmt.Sprintf("Secret %s exists and is not owned by this KVStore; %s", name, fix)}
	}
	return s.Data, nil
}

// caState plans <name>-ca (decideCA) and <name>-ca-bundle. Leaves count as current when the
// operator's <name>-tls (if it issues it) and every certificate in
// <name>-pod-tls verify against the observed signer.
func (p *plan) caState(kv *kvv1.KVStore, n names, obs *observed, now time.Time) (caState, error) {
	data, err := ownedData(kv, obs, n.ca, "delete it")
	if err != nil {
		return caState{}, err
	}
	var annotations map[string]string
	if s := obs.secret(n.ca); s != nil {
		annotations = s.Annotations
	}
	current := false
	if signer, err := certs.ParseCert(data[caCertKey]); err == nil {
		var leaves [][]byte
		if s := obs.secret(n.tls); s != nil && !n.userTLS && !n.certIssuer {
			leaves = append(leaves, s.Data[corev1.TLSCertKey])
		}
		if s := obs.secret(n.podTLS); s != nil {
			for k, v := range s.Data {
				if k != caCertKey && strings.HasSuffix(k, ".crt") {
					leaves = append(leaves, v)
				}
			}
		}
		current = signedBy(signer, leaves...)
	}
	ca, err := decideCA(data, annotations, current, now)
	if err != nil {
		return caState{}, err
	}
	p.ca = &ca
	p.due(ca.nextAt())
	var ev *event
	if ca.reason != caKept {
		ev = &event{ca.reason, "RotateCA", fmt.Sprintf("CA in Secret %s: %s (phase %q)", n.ca, ca.reason, ca.phase)}
	}
	p.add(typedChild(desiredCASecret(kv, ca), corev1ac.ExtractSecret).withEvent(ev),
		// The bundle follows the CA state (old + new during a rotation),
		// before any leaf or the Ingress that trusts it.
		typedChild(desiredCABundleSecret(kv, ca.bundle()), corev1ac.ExtractSecret))
	return ca, nil
}

// podTLS plans <name>-pod-tls for count pods (decidePodTLS).
func (p *plan) podTLS(kv *kvv1.KVStore, n names, obs *observed, o BuildOptions, ca caState, count int32, now time.Time) error {
	old, err := ownedData(kv, obs, n.podTLS, "delete it")
	if err != nil {
		return err
	}
	pt, err := decidePodTLS(ca, old, clusterName(kv), podLeaves(kv, o, count), now)
	if err != nil {
		return err
	}
	p.due(pt.renewAt)
	var ev *event
	if len(pt.issued) > 0 {
		ev = &event{"PodCertificatesIssued", "IssueCertificate", fmt.Sprintf("issued %s into Secret %s", strings.Join(pt.issued, ", "), n.podTLS)}
	}
	p.add(typedChild(desiredPodTLSSecret(kv, pt.data), corev1ac.ExtractSecret).withEvent(ev))
	return nil
}

// certificate plans the edge TLS Secret: a user's is checked and never
// written; a cert-manager Certificate is applied; else the operator issues
// (and re-issues) it from ca (decideTLS).
func (p *plan) certificate(kv *kvv1.KVStore, n names, obs *observed, o BuildOptions, ca caState, now time.Time) error {
	switch {
	case n.userTLS:
		s := obs.secret(n.tls)
		if s == nil {
			return &problem{"TLSSecretNotFound", fmt.Sprintf("Secret %s (spec.tls.secretName) does not exist in namespace %s; create a kubernetes.io/tls Secret", n.tls, n.namespace)}
		}
		if err := checkUserTLS(string(s.Type), s.Data); err != nil {
			return &problem{"TLSSecretInvalid", fmt.Sprintf("Secret %s (spec.tls.secretName): %v", n.tls, err)}
		}
		return nil
	case n.certIssuer:
		if !obs.installed[certificateGVK] {
			return &problem{"CertManagerNotInstalled", "spec.tls.issuerRef is set but the cert-manager.io/v1 Certificate kind is not served by this cluster; install cert-manager or clear spec.tls.issuerRef"}
		}
		p.add(looseChild(desiredCertificate(kv, o)))
		return nil
	}
	tlsData, err := ownedData(kv, obs, n.tls, "delete it or set spec.tls.secretName to it")
	if err != nil {
		return err
	}
	m, reason, err := decideTLS(ca, tlsData, tlsHosts(kv, o), now)
	if err != nil {
		return err
	}
	p.tls = &m
	p.due(m.renewAt)
	var issued *event
	if reason != tlsKept {
		issued = &event{"Certificate" + reason, "IssueCertificate", fmt.Sprintf("issued a certificate into Secret %s valid until %s (%s)",
			n.tls, m.notAfter.UTC().Format(time.RFC3339), reason)}
	}
	p.add(typedChild(desiredTLSSecret(kv, m), corev1ac.ExtractSecret).withEvent(issued))
	return nil
}
