package controller

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// terminationMessagePath is where a Job's kvstore container leaves its
// result (kvstore backup --result-file); the kubelet keeps at most 4096
// bytes of it in the pod's status.
const terminationMessagePath = "/dev/termination-log"

// jobTTL is how long a finished Job (and its pod, with the logs) stays
// for inspection; the operator has read its result long before.
const jobTTL = 24 * time.Hour

// serverJob is one run of the server image as a Job: what differs between
// the operator's Jobs (a backup to a PersistentVolumeClaim, the restore
// of spec.bootstrap).
type serverJob struct {
	name      string // the Job's name
	component string // app.kubernetes.io/component, and the name label's suffix
	// owner is the Job's controller: the object whose outcome it is.
	owner       metav1.OwnerReference
	annotations map[string]string
	args        []string // after the image's entrypoint, /usr/local/bin/kvstore
	env         []corev1.EnvVar
	volumes     []corev1.Volume
	mounts      []corev1.VolumeMount
	// deadline is activeDeadlineSeconds: the Job fails once it ran longer.
	deadline time.Duration
}

// jobLabels are the labels of a serverJob's Job and pod. They do not match
// the servers' selector (selectorLabels): a Job's pod is no server.
func jobLabels(kv *kvv1.KVStore, component string) map[string]string {
	l := jobSelectorLabels(kv, component)
	l["app.kubernetes.io/component"] = component
	l["app.kubernetes.io/managed-by"] = FieldOwner
	l["app.kubernetes.io/part-of"] = "kvstore"
	return l
}

// jobSelectorLabels select the pods of kv's Jobs of component (the
// NetworkPolicy admits the backup Job's pods to the API port).
func jobSelectorLabels(kv *kvv1.KVStore, component string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     "kvstore-" + component,
		"app.kubernetes.io/instance": kv.Name,
	}
}

// desiredServerJob is the Job of j, in kv's namespace, from kv's server
// image with the StatefulSet's pull policy and pull secrets: one pod, never
// restarted or retried (backoffLimit 0), as the image's non-root user with
// a read-only root filesystem, no privilege escalation, no capabilities and
// the runtime's default seccomp profile, no service account token, with
// jobResources (and GOMEMLIMIT under their memory limit). The
// container's termination message is terminationMessagePath, else the end
// of its log when it failed without writing one.
func desiredServerJob(kv *kvv1.KVStore, o BuildOptions, j serverJob) *batchv1.Job {
	l := jobLabels(kv, j.component)
	res := jobResources()
	env := append([]corev1.EnvVar(nil), j.env...)
	if v, ok := goMemLimit(res); ok {
		env = append(env, corev1.EnvVar{Name: "GOMEMLIMIT", Value: v})
	}
	container := corev1.Container{
		Name:                     "kvstore",
		Image:                    image(kv, o),
		ImagePullPolicy:          kv.Spec.ImagePullPolicy,
		Args:                     j.args,
		Env:                      env,
		Resources:                res,
		VolumeMounts:             j.mounts,
		TerminationMessagePath:   terminationMessagePath,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr(true),
			RunAsUser:                ptr[int64](serverUID),
			RunAsGroup:               ptr[int64](serverUID),
			AllowPrivilegeEscalation: ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	pod := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		AutomountServiceAccountToken:  ptr(false),
		EnableServiceLinks:            ptr(false),
		TerminationGracePeriodSeconds: ptr[int64](30),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:        ptr(true),
			RunAsUser:           ptr[int64](serverUID),
			RunAsGroup:          ptr[int64](serverUID),
			FSGroup:             ptr[int64](serverUID),
			FSGroupChangePolicy: ptr(corev1.FSGroupChangeOnRootMismatch),
			SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers:       []corev1.Container{container},
		Volumes:          j.volumes,
		ImagePullSecrets: append([]corev1.LocalObjectReference(nil), kv.Spec.ImagePullSecrets...),
		// On the servers' nodes: a claim of local storage is on one of them.
		NodeSelector: kv.Spec.NodeSelector,
		Tolerations:  kv.Spec.Tolerations,
	}
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: batchv1.SchemeGroupVersion.String(), Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            j.name,
			Namespace:       kv.Namespace,
			Labels:          l,
			Annotations:     j.annotations,
			OwnerReferences: []metav1.OwnerReference{j.owner},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr[int32](0),
			ActiveDeadlineSeconds:   ptr(int64(max(j.deadline, time.Second) / time.Second)),
			TTLSecondsAfterFinished: ptr(int32(jobTTL / time.Second)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec:       pod,
			},
		},
	}
}
