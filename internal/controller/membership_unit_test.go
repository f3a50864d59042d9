package controller

import (
	"testing"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

func member(id, suffrage string, applied uint64) wire.Member {
	return wire.Member{ID: id, Address: id + ":7000", Suffrage: suffrage, Status: &wire.NodeStatus{ID: id, CommitIndex: 1000, AppliedIndex: applied}}
}

func TestNextStep(t *testing.T) {
	view := func(ms ...wire.Member) *wire.ClusterStatus { return &wire.ClusterStatus{LeaderID: "kv-0", Members: ms} }
	unreachable := member("kv-2", "Nonvoter", 0)
	unreachable.Status = nil
	cases := map[string]struct {
		want, current int32
		view          *wire.ClusterStatus
		promote       string
		remove        string
		sts           int32
		pending       bool
	}{
		"new KVStore":                      {3, 0, nil, "", "", 3, false},
		"scale up without a view":          {3, 1, nil, "", "", 3, false},
		"scale down without a view":        {1, 3, nil, "", "", 3, true},
		"settled":                          {3, 3, view(member("kv-0", "Voter", 1000), member("kv-1", "Voter", 1000), member("kv-2", "Voter", 1000)), "", "", 3, false},
		"promote the lowest caught-up":     {3, 3, view(member("kv-0", "Voter", 1000), member("kv-2", "Nonvoter", 999), member("kv-1", "Nonvoter", 990)), "kv-1", "", 3, true},
		"lagging non-voter waits":          {3, 3, view(member("kv-0", "Voter", 1000), member("kv-1", "Voter", 1000), member("kv-2", "Nonvoter", 10)), "", "", 3, true},
		"silent non-voter waits":           {3, 3, view(member("kv-0", "Voter", 1000), member("kv-1", "Voter", 1000), unreachable), "", "", 3, true},
		"pod not joined yet":               {3, 3, view(member("kv-0", "Voter", 1000), member("kv-1", "Voter", 1000)), "", "", 3, true},
		"scale down removes highest first": {1, 3, view(member("kv-0", "Voter", 1000), member("kv-1", "Voter", 1000), member("kv-2", "Voter", 1000)), "", "kv-2", 3, true},
		"then the next":                    {1, 3, view(member("kv-0", "Voter", 1000), member("kv-1", "Voter", 1000)), "", "kv-1", 3, true},
		"then the StatefulSet shrinks":     {1, 3, view(member("kv-0", "Voter", 1000)), "", "", 1, true},
		"non-voter beyond the spec":        {2, 2, view(member("kv-0", "Voter", 1000), member("kv-1", "Voter", 1000), member("kv-5", "Nonvoter", 1000)), "", "", 2, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := newKV(func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(tc.want) })
			s := nextStep(kv, tc.current, tc.view)
			var promote, remove string
			if s.promote != nil {
				promote = s.promote.ID
			}
			if s.remove != nil {
				remove = s.remove.ID
			}
			if promote != tc.promote || remove != tc.remove || s.stsReplicas != tc.sts || (s.pending != "") != tc.pending {
				t.Errorf("step promote=%q remove=%q sts=%d pending=%q; want promote=%q remove=%q sts=%d pending=%v",
					promote, remove, s.stsReplicas, s.pending, tc.promote, tc.remove, tc.sts, tc.pending)
			}
		})
	}
}
