package controller

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// The server container's default resources, used when spec.resources is
// empty. They follow from what the server keeps in memory in cluster mode:
//
//   - the unflushed state: a memtable is flushed at 64 MiB (or 50 000 keys,
//     or every 5 s), and a new one fills while the old one is written, so
//     up to about 128 MiB;
//   - the watch history, 64 MiB at most (watch.history_bytes);
//   - requests in flight: a value is at most 1 MiB (limits.max_value_bytes)
//     and is held a few times over (body, command, Raft entry), so a
//     hundred concurrent large writes add a few hundred MiB;
//   - the Go collector's headroom above the live heap.
//
// That is a few hundred MiB at the bounds, so the limit is 1Gi, and the
// request, what a small store uses and the scheduler reserves, is 256Mi.
// There is no CPU limit: CFS throttling stalls a leader's heartbeats and
// causes needless elections, and an idle server needs little (100m).
var (
	defaultCPURequest    = resource.MustParse("100m")
	defaultMemoryRequest = resource.MustParse("256Mi")
	defaultMemoryLimit   = resource.MustParse("1Gi")
)

// The resources of the operator's Jobs (a backup to a claim, the restore
// of spec.bootstrap): requests, so that they schedule against a
// ResourceQuota that requires them and are not the first evicted, and a
// memory limit. A backup streams through fixed buffers (the rate limit's
// bucket, the manifest's hash) and a restore copies the snapshot into
// bbolt in bounded transactions, so both stay within tens of MiB of heap;
// bbolt's mapped pages are page cache, reclaimable under the limit. No
// CPU limit: at the default 16 MiB/s a backup hashes and writes at a few
// percent of a core, and throttling would only stretch it.
var (
	jobCPURequest    = resource.MustParse("50m")
	jobMemoryRequest = resource.MustParse("64Mi")
	jobMemoryLimit   = resource.MustParse("512Mi")
)

// jobResources are the resources of the operator's Jobs' container.
func jobResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: jobCPURequest, corev1.ResourceMemory: jobMemoryRequest},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: jobMemoryLimit},
	}
}

// goMemLimitPercent is the share of the container's memory limit given to
// the Go runtime as GOMEMLIMIT; the rest is for what the runtime does not
// count, such as bbolt's memory-mapped pages.
const goMemLimitPercent = 90

// serverResources is spec.resources, or the defaults when it is empty.
// Anything set replaces the defaults as a whole, so a user can also leave
// the memory limit out.
func serverResources(kv *kvv1.KVStore) corev1.ResourceRequirements {
	r := kv.Spec.Resources
	if len(r.Limits) > 0 || len(r.Requests) > 0 || len(r.Claims) > 0 {
		return *r.DeepCopy()
	}
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: defaultCPURequest, corev1.ResourceMemory: defaultMemoryRequest},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: defaultMemoryLimit},
	}
}

// goMemLimit is the GOMEMLIMIT value (bytes) for a container with resources
// r: goMemLimitPercent of its memory limit. ok is false without a memory
// limit: the runtime then collects by GOGC alone.
func goMemLimit(r corev1.ResourceRequirements) (value string, ok bool) {
	limit, found := r.Limits[corev1.ResourceMemory]
	if !found || limit.Value() <= 0 {
		return "", false
	}
	return strconv.FormatInt(limit.Value()/100*goMemLimitPercent, 10), true
}
