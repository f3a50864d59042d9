package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/internal/errcode"
	"kvstore.dev/kvstore/wire"
)

// maxRequestIDBytes bounds RecoverRequest.RequestID.
const maxRequestIDBytes = 128

// recoverCluster is POST /api/v1/cluster/recover (admin only): after a lost
// quorum, this server makes itself a one-server cluster by restarting
// (Options.Recover records the request and has the server exit). It
// refuses, changing nothing, unless this server is req.NodeID and a member
// of a multi-server cluster that sees no leader: never on a healthy
// cluster, never on a server reached through a load balancer by mistake.
func (s *Server) recoverCluster(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !p.CanAdmin() {
		return errWith(errForbidden, "token %q is not an admin token; a recovery needs one", p.Name)
	}
	var req wire.RecoverRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<12))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return errWith(errInvalidArgument, "body: %v; want {\"node_id\": ..., \"request_id\": ...}", err)
	}
	switch {
	case req.NodeID == "":
		return errWith(errInvalidArgument, "body: node_id is required: the id of the server to recover (this one)")
	case req.RequestID == "" || len(req.RequestID) > maxRequestIDBytes:
		return errWith(errInvalidArgument, "body: request_id is required, at most %d bytes: a request is carried out at most once", maxRequestIDBytes)
	}
	if s.opts.Recover == nil {
		return errWith(errcode.ErrNotClustered, "this server cannot be recovered (not in cluster mode)")
	}
	st, err := s.backend.ClusterStatus(r.Context())
	if err != nil {
		return err
	}
	member := slices.ContainsFunc(st.Members, func(m wire.Member) bool { return m.ID == st.Self.ID })
	switch {
	case !st.Enabled:
		return errWith(errcode.ErrNotClustered, "a single node has no quorum to recover")
	case st.Self.ID != req.NodeID:
		return errWith(errcode.ErrRecoveryRefused, "this is server %q, the request is for %q: send it to that server's own address", st.Self.ID, req.NodeID)
	case !member:
		return errWith(errcode.ErrRecoveryRefused, "server %q is not a member of its cluster's configuration", st.Self.ID)
	case len(st.Members) < 2:
		return errWith(errcode.ErrRecoveryRefused, "server %q is the only server of its cluster already", st.Self.ID)
	case st.LeaderID != "":
		return errWith(errcode.ErrRecoveryRefused, "server %q sees a leader (%s): the cluster has its quorum; a recovery is only for a quorum lost for good", st.Self.ID, st.LeaderID)
	}
	if err := s.opts.Recover(req, st.Self); err != nil {
		return err
	}
	s.log.WarnContext(r.Context(), "recovery requested: restarting to become a one-server cluster",
		"request_id", requestID(r.Context()), "node", st.Self.ID, "recovery_request", req.RequestID,
		"last_log_term", st.Self.LastLogTerm, "last_log_index", st.Self.LastLogIndex, "members", len(st.Members))
	writeJSON(w, http.StatusAccepted, wire.RecoverResponse{
		NodeID: st.Self.ID, RequestID: req.RequestID, LastLogTerm: st.Self.LastLogTerm, LastLogIndex: st.Self.LastLogIndex,
	})
	return nil
}
