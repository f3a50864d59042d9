package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
	kvclient "kvstore.dev/kvstore/client"
	"kvstore.dev/kvstore/wire"
)

// The recovery deletes the lost cluster's pods and volumes, which it
// reads first (uncached) to delete only those made before the recovery.
//
// +kubebuilder:rbac:groups="",resources=pods;persistentvolumeclaims,verbs=get;delete

// podProbeTimeout bounds each pod's answer when the pods are asked one by
// one.
const podProbeTimeout = 3 * time.Second

// dataClaimTemplate is the name of the StatefulSet's volume claim
// template: pod p's claim is dataClaimTemplate + "-" + p.
const dataClaimTemplate = "data"

// probePods asks each of the first count pods of kv, by its own address,
// for its view of the cluster, all at once; a pod that does not answer is
// left out.
func (r *Reconciler) probePods(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, count int32) map[string]wire.ClusterStatus {
	out := map[string]wire.ClusterStatus{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range count {
		pod := podName(kv, i)
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, podProbeTimeout)
			defer cancel()
			if st, err := r.Cluster.PodStatus(pctx, kv, a, pod); err == nil {
				mu.Lock()
				out[pod] = st
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// recovery takes the recovery step s: the survivor's recover call (the
// reconcile's one call to the servers; it reports whether it made it),
// and the deletion of the lost cluster's volumes and pods. Failures are
// recorded as events: the next reconcile decides again. holdMembership
// says that membership changes must wait: the recovery runs, or a volume
// of the lost cluster is not gone yet. A server that joined the recovered
// cluster from such a volume, promoted to voter, would be wiped after and
// leave the new cluster without a quorum again (seen on real pods).
func (r *Reconciler) recovery(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, s recoveryStep) (called, holdMembership bool) {
	holdMembership = s.status != nil && s.status.Phase == kvv1.RecoveryRecovering
	if s.event != nil {
		typ := corev1.EventTypeNormal
		if s.warning {
			typ = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(kv, nil, typ, s.event.reason, s.event.action, "%s", s.event.note)
	}
	for _, pod := range s.wipe {
		pending, err := r.wipe(ctx, kv, pod, s.cutoff)
		if err != nil {
			pending = true
			r.Recorder.Eventf(kv, nil, corev1.EventTypeWarning, "RecoveryWipeFailed", "Recover", "deleting the lost cluster's volume of %s: %v", pod, err)
		}
		holdMembership = holdMembership || pending
	}
	if s.recoverPod == "" || r.Cluster == nil {
		return false, holdMembership
	}
	res, err := r.Cluster.Recover(ctx, kv, a, s.recoverPod, s.request)
	if err != nil {
		r.Recorder.Eventf(kv, nil, corev1.EventTypeWarning, "RecoverCallFailed", "Recover", "asking %s to recover (request %s): %v", s.recoverPod, s.request.RequestID, err)
	} else {
		r.Recorder.Eventf(kv, nil, corev1.EventTypeWarning, "RecoverRequested", "Recover",
			"%s accepted request %s and restarts as a one-server cluster, keeping its log up to term %d, index %d", res.NodeID, res.RequestID, res.LastLogTerm, res.LastLogIndex)
	}
	return true, holdMembership
}

// wipe deletes pod's PersistentVolumeClaim when it was made before cutoff
// (it holds the lost cluster's data), and the pod that holds it, so that
// the StatefulSet makes both anew, empty. Claims made later (the new ones)
// are left alone, so wipe may run on every reconcile.
func (r *Reconciler) wipe(ctx context.Context, kv *kvv1.KVStore, pod string, cutoff time.Time) (pending bool, err error) {
	pvc := &corev1.PersistentVolumeClaim{}
	key := client.ObjectKey{Namespace: kv.Namespace, Name: dataClaimTemplate + "-" + pod}
	switch err := r.apiReader().Get(ctx, key, pvc); {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return true, err
	case !pvc.CreationTimestamp.Time.Before(cutoff):
		return false, nil // made after the recovery started: empty
	}
	if pvc.DeletionTimestamp.IsZero() {
		if err := r.Client.Delete(ctx, pvc, client.Preconditions{UID: &pvc.UID}); client.IgnoreNotFound(err) != nil {
			return true, fmt.Errorf("delete PersistentVolumeClaim %s: %w", pvc.Name, err)
		}
		r.Recorder.Eventf(kv, nil, corev1.EventTypeWarning, "RecoveryVolumeDeleted", "Recover",
			"deleted PersistentVolumeClaim %s: it holds the lost cluster's data; %s comes back empty and rejoins", pvc.Name, pod)
	}
	// The claim stays until no pod uses it (kubernetes.io/pvc-protection):
	// the pod goes, and goes again while the old claim is there.
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: kv.Namespace, Name: pod}}
	switch err := r.apiReader().Get(ctx, client.ObjectKeyFromObject(p), p); {
	case apierrors.IsNotFound(err):
		return true, nil // the claim is still there
	case err != nil:
		return true, err
	case !p.DeletionTimestamp.IsZero():
		return true, nil
	}
	if err := r.Client.Delete(ctx, p, client.Preconditions{UID: &p.UID}); client.IgnoreNotFound(err) != nil {
		return true, fmt.Errorf("delete pod %s: %w", pod, err)
	}
	return true, nil
}

// PodStatus implements ClusterClient: GET /api/v1/cluster of one pod, by
// its headless Service name.
func (c *HTTPClusterClient) PodStatus(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, pod string) (st wire.ClusterStatus, err error) {
	err = c.callURL(ctx, kv, a, c.podURL(kv, pod), func(ctx context.Context, cl *kvclient.Client) error {
		st, err = cl.ClusterStatus(ctx)
		return err
	})
	return st, err
}

// Recover implements ClusterClient: POST /api/v1/cluster/recover of one
// pod, by its headless Service name.
func (c *HTTPClusterClient) Recover(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, pod string, req wire.RecoverRequest) (res wire.RecoverResponse, err error) {
	err = c.callURL(ctx, kv, a, c.podURL(kv, pod), func(ctx context.Context, cl *kvclient.Client) error {
		res, err = cl.Recover(ctx, req)
		return err
	})
	return res, err
}

// podURL is pod's API URL: its name under the headless Service (the pods'
// API certificate names *.<name>-peers), or PodURL's.
func (c *HTTPClusterClient) podURL(kv *kvv1.KVStore, pod string) string {
	if c.PodURL != nil {
		return c.PodURL(kv, pod)
	}
	return fmt.Sprintf("%s://%s.%s.%s.svc.%s:%d", apiScheme(kv), pod, namesFor(kv).peers, kv.Namespace, clusterDomain(c.Options), httpPort)
}
