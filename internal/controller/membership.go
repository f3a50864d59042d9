package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	kvclient "kvstore.dev/kvstore/client"
	"kvstore.dev/kvstore/wire"
)

// ClusterClient reaches a KVStore's servers' cluster API
// (/api/v1/cluster) with the admin token, over HTTPS verified against the
// CA bundle of <name>-pod-tls. It is a Reconciler field so tests can point
// it at server processes standing in for pods, or fake it.
type ClusterClient interface {
	Status(ctx context.Context, kv *kvv1.KVStore, access ServerAccess) (wire.ClusterStatus, error)
	AddMember(ctx context.Context, kv *kvv1.KVStore, access ServerAccess, id, address string, voter bool) error
	RemoveMember(ctx context.Context, kv *kvv1.KVStore, access ServerAccess, id string) error
	// PodStatus and Recover reach one pod, by its own address: its view of
	// the cluster, and its recover endpoint (recovery.go).
	PodStatus(ctx context.Context, kv *kvv1.KVStore, access ServerAccess, pod string) (wire.ClusterStatus, error)
	Recover(ctx context.Context, kv *kvv1.KVStore, access ServerAccess, pod string, req wire.RecoverRequest) (wire.RecoverResponse, error)
}

// ServerAccess is what reaching a KVStore's servers takes, as observed.
type ServerAccess struct {
	// Token is the admin token.
	Token string
	// CABundle is the PEM bundle the pods' API certificate verifies
	// against (ca.crt of <name>-pod-tls).
	CABundle []byte
}

// catchUpSlack is how many log entries a non-voter may lag the leader's
// commit index and still count as caught up.
const catchUpSlack = 64

// clusterCallTimeout bounds each call of HTTPClusterClient.
const clusterCallTimeout = 10 * time.Second

// HTTPClusterClient is the ClusterClient of a real cluster: package client
// calling the KVStore's client Service over HTTPS (plain HTTP when
// spec.tls.pods is Disabled). Each call verifies the
// server's certificate against the access's CA bundle for the client
// Service's name (apiServerName), whatever address it dials, and closes
// its connections when done: the bundle may change between calls.
type HTTPClusterClient struct {
	Options BuildOptions
	// BaseURL overrides the client Service's URL (tests).
	BaseURL func(kv *kvv1.KVStore) string
	// PodURL overrides a pod's own URL (tests).
	PodURL func(kv *kvv1.KVStore, pod string) string
}

// call runs f with a kvstore client of kv's client Service.
func (c *HTTPClusterClient) call(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, f func(context.Context, *kvclient.Client) error) error {
	url := fmt.Sprintf("%s://%s.%s.svc.%s:%d", apiScheme(kv), kv.Name, kv.Namespace, clusterDomain(c.Options), httpPort)
	if c.BaseURL != nil {
		url = c.BaseURL(kv)
	}
	return c.callURL(ctx, kv, a, url, f)
}

// callURL runs f with a kvstore client of url, one of kv's servers.
func (c *HTTPClusterClient) callURL(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, url string, f func(context.Context, *kvclient.Client) error) error {
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	if podAPITLS(kv) {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(a.CABundle) {
			return fmt.Errorf("reach %s/%s: no CA certificate in the pods' bundle", kv.Namespace, kv.Name)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: apiServerName(kv), MinVersion: tls.VersionTLS12}
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, clusterCallTimeout)
	defer cancel()
	return f(ctx, kvclient.New(url, kvclient.WithToken(a.Token), kvclient.WithHTTPClient(&http.Client{Transport: tr})))
}

// Status implements ClusterClient.
func (c *HTTPClusterClient) Status(ctx context.Context, kv *kvv1.KVStore, a ServerAccess) (st wire.ClusterStatus, err error) {
	err = c.call(ctx, kv, a, func(ctx context.Context, cl *kvclient.Client) error {
		st, err = cl.ClusterStatus(ctx)
		return err
	})
	return st, err
}

// AddMember implements ClusterClient.
func (c *HTTPClusterClient) AddMember(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, id, address string, voter bool) error {
	return c.call(ctx, kv, a, func(ctx context.Context, cl *kvclient.Client) error {
		return cl.AddMember(ctx, wire.AddMemberRequest{ID: id, Address: address, Voter: &voter})
	})
}

// RemoveMember implements ClusterClient.
func (c *HTTPClusterClient) RemoveMember(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, id string) error {
	return c.call(ctx, kv, a, func(ctx context.Context, cl *kvclient.Client) error {
		return cl.RemoveMember(ctx, id)
	})
}

// membershipStep is what the operator does next to a KVStore's Raft
// configuration, decided by nextStep from what it observed.
type membershipStep struct {
	promote     *wire.Member // add as a voter (it has caught up)
	remove      *wire.Member // remove from the configuration (scale down)
	stsReplicas int32        // the StatefulSet's replicas now
	pending     string       // why membership is not settled, "" when it is
}

// nextStep is the membership decision, a pure function of the spec, the
// StatefulSet's current replicas (0 when it does not exist) and the
// cluster's view (nil when the servers could not be asked):
//
//   - Scaling up sets the StatefulSet's replicas at once: new pods join as
//     non-voters, which do not count for the quorum. They are promoted one
//     per step, lowest ordinal first, once caught up.
//   - Scaling down first removes the highest ordinals from the Raft
//     configuration, one per step; only then does the StatefulSet shrink.
//     Without a view of the cluster it never shrinks.
//
// Each step is read back from the cluster on the next reconcile, so an
// operator that crashes between two steps continues where it was.
func nextStep(kv *kvv1.KVStore, current int32, view *wire.ClusterStatus) membershipStep {
	want := replicas(kv)
	if current == 0 {
		current = want
	}
	if view == nil {
		if want >= current {
			return membershipStep{stsReplicas: want}
		}
		return membershipStep{stsReplicas: current, pending: "waiting for the servers to answer before removing members"}
	}
	var leaderCommit uint64
	for _, m := range view.Members {
		if m.ID == view.LeaderID && m.Status != nil {
			leaderCommit = m.Status.CommitIndex
		}
	}
	members := slices.Clone(view.Members)
	slices.SortFunc(members, func(a, b wire.Member) int { return int(ordinal(kv, a.ID) - ordinal(kv, b.ID)) })

	if want < current {
		for i := len(members) - 1; i >= 0; i-- {
			if ordinal(kv, members[i].ID) >= want {
				m := members[i]
				return membershipStep{remove: &m, stsReplicas: current,
					pending: fmt.Sprintf("removing %s from the cluster before the StatefulSet shrinks to %d", m.ID, want)}
			}
		}
		return membershipStep{stsReplicas: want, pending: fmt.Sprintf("shrinking to %d servers", want)}
	}
	step := membershipStep{stsReplicas: want}
	voters := 0
	for _, m := range members {
		if m.Suffrage == wire.SuffrageVoter {
			voters++
			continue
		}
		if o := ordinal(kv, m.ID); o < 0 || o >= want {
			continue
		}
		if m.Status != nil && leaderCommit > 0 && m.Status.AppliedIndex+catchUpSlack >= leaderCommit {
			if step.promote == nil {
				mm := m
				step.promote = &mm
			}
		}
		if step.pending == "" {
			step.pending = fmt.Sprintf("%s is catching up as a non-voter", m.ID)
		}
	}
	if step.pending == "" && voters < int(want) {
		step.pending = fmt.Sprintf("%d of %d servers are voting members", voters, want)
	}
	return step
}

// membership takes step: at most one call to the servers, recorded as an
// event. A failure is only recorded: the next reconcile decides again.
func (r *Reconciler) membership(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, step membershipStep) {
	switch {
	case step.promote != nil:
		if err := r.Cluster.AddMember(ctx, kv, a, step.promote.ID, step.promote.Address, true); err != nil {
			r.Recorder.Eventf(kv, nil, corev1.EventTypeWarning, "PromoteFailed", "Membership", "promoting %s: %v", step.promote.ID, err)
		} else {
			r.Recorder.Eventf(kv, nil, corev1.EventTypeNormal, "MemberPromoted", "Membership", "%s caught up and is now a voter", step.promote.ID)
		}
	case step.remove != nil:
		if err := r.Cluster.RemoveMember(ctx, kv, a, step.remove.ID); err != nil {
			r.Recorder.Eventf(kv, nil, corev1.EventTypeWarning, "RemoveFailed", "Membership", "removing %s: %v", step.remove.ID, err)
		} else {
			r.Recorder.Eventf(kv, nil, corev1.EventTypeNormal, "MemberRemoved", "Membership", "%s left the cluster; the StatefulSet shrinks after it", step.remove.ID)
		}
	}
}

// memberStatus is the status's view of the members, ordered by ordinal.
func memberStatus(kv *kvv1.KVStore, v *wire.ClusterStatus) (leader string, members []kvv1.MemberStatus) {
	for _, m := range v.Members {
		members = append(members, kvv1.MemberStatus{Name: m.ID, Suffrage: m.Suffrage})
	}
	slices.SortFunc(members, func(a, b kvv1.MemberStatus) int { return int(ordinal(kv, a.Name) - ordinal(kv, b.Name)) })
	return v.LeaderID, members
}
