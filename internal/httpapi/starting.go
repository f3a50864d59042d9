package httpapi

import (
	"encoding/json"
	"net/http"

	"kvstore.dev/kvstore/wire"
)

// Starting is the API listener's handler while the server opens its store
// and its Raft node joins the cluster, before New's handler exists: a
// server that is joining is alive, so /healthz answers 200 with
// {"status":"starting"} (the startup and liveness probes pass however long
// the join takes), and every other request, /readyz included, 503
// unavailable with Retry-After (the pod stays unready and out of the client
// Service). It is safe for concurrent use.
func Starting() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == wire.PathHealthz {
			writeJSON(w, http.StatusOK, map[string]string{"status": "starting"})
			return
		}
		p, _ := problemFor(errWith(errUnavailable, "the server is starting (opening its store or joining its cluster)"))
		h := w.Header()
		h.Set("Retry-After", "1")
		h.Set("Content-Type", "application/problem+json")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(p.Status)
		_ = json.NewEncoder(w).Encode(p)
	})
}
