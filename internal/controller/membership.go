package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// ClusterClient reaches a KVStore's servers' cluster API
// (/api/v1/cluster) with the admin token. It is a Reconciler field so tests
// can point it at server processes standing in for pods.
type ClusterClient interface {
	Status(ctx context.Context, kv *kvv1.KVStore, token string) (ClusterView, error)
	AddMember(ctx context.Context, kv *kvv1.KVStore, token, id, address string, voter bool) error
	RemoveMember(ctx context.Context, kv *kvv1.KVStore, token, id string) error
}

// ClusterView is the Raft configuration as the servers report it.
type ClusterView struct {
	LeaderID string          `json:"leader_id"`
	Members  []ClusterMember `json:"members"`
}

// ClusterMember is one server of a ClusterView.
type ClusterMember struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"` // Voter, Nonvoter, Staging
	Status   *struct {
		CommitIndex  uint64 `json:"commit_index"`
		AppliedIndex uint64 `json:"applied_index"`
	} `json:"status"` // nil when the member did not answer
}

// catchUpSlack is how many log entries a non-voter may lag the leader's
// commit index and still count as caught up.
const catchUpSlack = 64

// HTTPClusterClient is the ClusterClient of a real cluster: it calls the
// KVStore's client Service.
type HTTPClusterClient struct {
	HTTP    *http.Client
	Options BuildOptions
	// BaseURL overrides the client Service's URL (tests).
	BaseURL func(kv *kvv1.KVStore) string
}

func (c *HTTPClusterClient) url(kv *kvv1.KVStore, path string) string {
	if c.BaseURL != nil {
		return c.BaseURL(kv) + path
	}
	return fmt.Sprintf("http://%s.%s.svc.%s:%d%s", kv.Name, kv.Namespace, clusterDomain(c.Options), httpPort, path)
}

func (c *HTTPClusterClient) do(ctx context.Context, method, url, token string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p struct{ Code, Detail string }
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return fmt.Errorf("%s %s: %s (%s: %s)", method, req.URL.Path, resp.Status, p.Code, p.Detail)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// Status implements ClusterClient.
func (c *HTTPClusterClient) Status(ctx context.Context, kv *kvv1.KVStore, token string) (ClusterView, error) {
	var v ClusterView
	err := c.do(ctx, http.MethodGet, c.url(kv, "/api/v1/cluster"), token, nil, &v)
	return v, err
}

// AddMember implements ClusterClient.
func (c *HTTPClusterClient) AddMember(ctx context.Context, kv *kvv1.KVStore, token, id, address string, voter bool) error {
	return c.do(ctx, http.MethodPost, c.url(kv, "/api/v1/cluster/members"), token,
		map[string]any{"id": id, "address": address, "voter": voter}, nil)
}

// RemoveMember implements ClusterClient.
func (c *HTTPClusterClient) RemoveMember(ctx context.Context, kv *kvv1.KVStore, token, id string) error {
	return c.do(ctx, http.MethodDelete, c.url(kv, "/api/v1/cluster/members/"+id), token, nil, nil)
}

// membershipStep is what the operator does next to a KVStore's Raft
// configuration, decided by nextStep from what it observed.
type membershipStep struct {
	promote     *ClusterMember // add as a voter (it has caught up)
	remove      *ClusterMember // remove from the configuration (scale down)
	stsReplicas int32          // the StatefulSet's replicas now
	pending     string         // why membership is not settled, "" when it is
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
func nextStep(kv *kvv1.KVStore, current int32, view *ClusterView) membershipStep {
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
	slices.SortFunc(members, func(a, b ClusterMember) int { return int(ordinal(kv, a.ID) - ordinal(kv, b.ID)) })

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
		if m.Suffrage == "Voter" {
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

// membership runs one membership step and returns the StatefulSet's
// replicas. The view it read is kept for the status.
func (rc *run) membership(ctx context.Context, token string, current int32) int32 {
	kv := rc.kv
	var view *ClusterView
	if rc.r.Cluster != nil && token != "" {
		v, err := rc.r.Cluster.Status(ctx, kv, token)
		if err == nil {
			view = &v
			rc.view = view
		}
	}
	step := nextStep(kv, current, view)
	rc.membershipPending = step.pending
	switch {
	case step.promote != nil:
		if err := rc.r.Cluster.AddMember(ctx, kv, token, step.promote.ID, step.promote.Address, true); err != nil {
			rc.r.Recorder.Eventf(kv, nil, corev1.EventTypeWarning, "PromoteFailed", "Membership", "promoting %s: %v", step.promote.ID, err)
		} else {
			rc.r.Recorder.Eventf(kv, nil, corev1.EventTypeNormal, "MemberPromoted", "Membership", "%s caught up and is now a voter", step.promote.ID)
		}
	case step.remove != nil:
		if err := rc.r.Cluster.RemoveMember(ctx, kv, token, step.remove.ID); err != nil {
			rc.r.Recorder.Eventf(kv, nil, corev1.EventTypeWarning, "RemoveFailed", "Membership", "removing %s: %v", step.remove.ID, err)
		} else {
			rc.r.Recorder.Eventf(kv, nil, corev1.EventTypeNormal, "MemberRemoved", "Membership", "%s left the cluster; the StatefulSet shrinks after it", step.remove.ID)
		}
	}
	return step.stsReplicas
}

// memberStatus is the status's view of the members, ordered by ordinal.
func memberStatus(kv *kvv1.KVStore, v *ClusterView) (leader string, members []kvv1.MemberStatus) {
	for _, m := range v.Members {
		members = append(members, kvv1.MemberStatus{Name: m.ID, Suffrage: m.Suffrage})
	}
	slices.SortFunc(members, func(a, b kvv1.MemberStatus) int { return int(ordinal(kv, a.Name) - ordinal(kv, b.Name)) })
	return v.LeaderID, members
}
