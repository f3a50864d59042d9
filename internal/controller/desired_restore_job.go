package controller

import (
	"path"
	"slices"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/backup"
)

// The restore Job's mounts and bounds.
const (
	restoreSourceDir = "/backup-source" // a persistentVolumeClaim source, read-only
	restoreS3CADir   = "/etc/kvstore-s3-ca"
	// restoreDeadline bounds the restore Job (activeDeadlineSeconds).
	restoreDeadline = 2 * time.Hour
)

// restoreSource is a resolved spec.bootstrap.fromBackup: the destination
// holding the backup, its name and the SHA-256 it must have.
type restoreSource struct {
	dest   kvv1.BackupDestination
	name   string
	sha256 string
}

// uri is the --from of kvstore restore inside the Job: the S3 location,
// or the source claim's directory as mounted.
func (s restoreSource) uri() string {
	if s3 := s.dest.S3; s3 != nil {
		return backup.Location{Scheme: "s3", Bucket: s3.Bucket, Prefix: s3.Prefix}.String()
	}
	return backup.Location{Scheme: "file", Path: path.Join(restoreSourceDir, s.dest.PersistentVolumeClaim.SubPath)}.String()
}

// describe names the backup for status.bootstrap.sourceURI: its data
// object, with the claim's name for a persistentVolumeClaim source.
func (s restoreSource) describe() string {
	obj := s.name + ".db"
	if s.dest.S3 != nil {
		return s.uri() + "/" + obj
	}
	return "pvc://" + s.dest.PersistentVolumeClaim.ClaimName + "/" + path.Join(s.dest.PersistentVolumeClaim.SubPath, obj)
}

// restoreJobName is the restore Job of kv (kv's name is at most 52
// characters: the Job's, 60, fits its job-name label).
func restoreJobName(kv *kvv1.KVStore) string { return kv.Name + "-restore" }

// dataClaimName is the name the StatefulSet's volumeClaimTemplate gives
// pod i's claim (<template>-<statefulset>-<ordinal>).
func dataClaimName(kv *kvv1.KVStore, i int32) string { return "data-" + podName(kv, i) }

// desiredDataClaim is pod i's data claim exactly as the StatefulSet would
// create it from its volumeClaimTemplate (desiredStatefulSet): its name,
// labels and spec, and no owner, so that the StatefulSet adopts it as its
// own (TestDataClaimMatchesTemplate).
func desiredDataClaim(kv *kvv1.KVStore, i int32) *corev1.PersistentVolumeClaim {
	spec := corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		VolumeMode:  ptr(corev1.PersistentVolumeFilesystem),
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: storageSize(kv)}},
	}
	if sc := kv.Spec.Storage.StorageClassName; sc != nil {
		spec.StorageClassName = ptr(*sc)
	}
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: dataClaimName(kv, i), Namespace: kv.Namespace, Labels: selectorLabels(kv)},
		Spec:       spec,
	}
}

// desiredRestoreJob is the Job that restores src onto pod 0's data claim
// as the first member of a new cluster: kvstore restore --node-id with
// pod 0's node id and peer address (as desiredStatefulSet passes them to
// serve), so that pod 0 starts as the leader of a one-server cluster
// holding the backup, and the other pods join it empty. The restore
// verifies the checksum (against sha256 and the manifest), then the
// snapshot, and refuses a volume that holds data. Its error is the
// container's termination message (from its log).
func desiredRestoreJob(kv *kvv1.KVStore, o BuildOptions, src restoreSource) *batchv1.Job {
	pod0 := podName(kv, 0)
	args := []string{"restore",
		"--from=" + src.uri(), "--backup=" + src.name, "--sha256=" + src.sha256,
		"--data-dir=" + dataDir,
		"--node-id=" + pod0,
		"--peer-advertise=" + pod0 + "." + peersHost(kv, o) + ":" + strconv.Itoa(peerPort)}
	mounts := []corev1.VolumeMount{{Name: "data", MountPath: dataDir}}
	volumes := []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: dataClaimName(kv, 0)}}}}
	var env []corev1.EnvVar
	if s3 := src.dest.S3; s3 != nil {
		args = append(args, s3Args(s3)...)
		env = s3CredentialEnv(s3)
		if s3.CA != nil {
			args = append(args, "--s3-ca-file="+restoreS3CADir+"/"+s3.CA.Key)
			mounts = append(mounts, corev1.VolumeMount{Name: "s3-ca", MountPath: restoreS3CADir, ReadOnly: true})
			volumes = append(volumes, corev1.Volume{Name: "s3-ca", VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: s3.CA.Name, DefaultMode: ptr(int32(0o440))}}})
		}
	} else {
		mounts = append(mounts, corev1.VolumeMount{Name: "source", MountPath: restoreSourceDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "source", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: src.dest.PersistentVolumeClaim.ClaimName, ReadOnly: true}}})
	}
	return desiredServerJob(kv, o, serverJob{
		name: restoreJobName(kv), component: "restore",
		owner: metav1.OwnerReference{APIVersion: kvv1.GroupVersion.String(), Kind: "KVStore", Name: kv.Name, UID: kv.UID,
			Controller: ptr(true), BlockOwnerDeletion: ptr(true)},
		args: args, env: env, volumes: volumes, mounts: mounts,
		deadline: restoreDeadline,
	})
}

// s3Args are the kvstore flags of an S3 destination but its credentials,
// which go in the environment (s3CredentialEnv), never in arguments.
func s3Args(s3 *kvv1.S3Destination) []string {
	var args []string
	for flag, v := range map[string]string{"--s3-endpoint": s3.Endpoint, "--s3-region": s3.Region, "--s3-bucket-lookup": s3.BucketLookup} {
		if v != "" {
			args = append(args, flag+"="+v)
		}
	}
	slices.Sort(args)
	return args
}

// s3CredentialEnv passes an S3 destination's credentials Secret as the
// environment kvstore reads them from (the session token is optional).
func s3CredentialEnv(s3 *kvv1.S3Destination) []corev1.EnvVar {
	ref := func(key string, optional bool) *corev1.EnvVarSource {
		sel := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: s3.CredentialsSecret}, Key: key}
		if optional {
			sel.Optional = ptr(true)
		}
		return &corev1.EnvVarSource{SecretKeyRef: sel}
	}
	return []corev1.EnvVar{
		{Name: backup.EnvAccessKey, ValueFrom: ref(S3AccessKeyIDKey, false)},
		{Name: backup.EnvSecretKey, ValueFrom: ref(S3SecretAccessKeyKey, false)},
		{Name: backup.EnvSessionToken, ValueFrom: ref(S3SessionTokenKey, true)},
	}
}
