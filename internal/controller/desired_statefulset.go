package controller

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// The server image's user (see the Dockerfile).
const serverUID = 65532

// desiredStatefulSet is the StatefulSet of kvstore servers with stsReplicas
// pods (the membership steps decide it; see membership.go). hash is
// configHash of the rendered config and the tokens.
func desiredStatefulSet(kv *kvv1.KVStore, o BuildOptions, hash string, stsReplicas int32) *appsv1ac.StatefulSetApplyConfiguration {
	n := namesFor(kv)
	podLabels := labels(kv, "server")

	container := corev1ac.Container().
		WithName("kvstore").
		WithImage(image(kv, o)).
		WithArgs("serve", "--config", configDir+"/"+configFile,
			"--node-id=$(POD_NAME)",
			"--peer-advertise=$(POD_NAME)."+peersHost(kv, o)+":"+strconv.Itoa(peerPort),
			// Peer mTLS with the pod's own certificate, API TLS, extra
			// tokens: files the servers re-read when the kubelet updates
			// the Secret volumes (podtls.go, tokens.go).
			"--cluster-name="+clusterName(kv),
			"--peer-tls-cert="+podTLSDir+"/$(POD_NAME).crt",
			"--peer-tls-key="+podTLSDir+"/$(POD_NAME).key",
			"--peer-tls-ca="+podTLSDir+"/"+caCertKey,
			"--tokens-file="+tokensDir+"/"+tokensFile).
		WithEnv(
			corev1ac.EnvVar().WithName("POD_NAME").WithValueFrom(
				corev1ac.EnvVarSource().WithFieldRef(corev1ac.ObjectFieldSelector().WithAPIVersion("v1").WithFieldPath("metadata.name"))),
			corev1ac.EnvVar().WithName("KVSTORE_ADMIN_TOKEN").WithValueFrom(
				corev1ac.EnvVarSource().WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(n.auth).WithKey(AuthTokenKey))),
			corev1ac.EnvVar().WithName("KVSTORE_PEER_TOKEN").WithValueFrom(
				corev1ac.EnvVarSource().WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(n.peer).WithKey(AuthTokenKey))),
		).
		WithPorts(
			corev1ac.ContainerPort().WithName("http").WithContainerPort(httpPort).WithProtocol(corev1.ProtocolTCP),
			corev1ac.ContainerPort().WithName("peer").WithContainerPort(peerPort).WithProtocol(corev1.ProtocolTCP),
			corev1ac.ContainerPort().WithName("metrics").WithContainerPort(metricsPort).WithProtocol(corev1.ProtocolTCP),
		).
		WithVolumeMounts(
			corev1ac.VolumeMount().WithName("data").WithMountPath(dataDir),
			corev1ac.VolumeMount().WithName("config").WithMountPath(configDir).WithReadOnly(true),
			corev1ac.VolumeMount().WithName("pod-tls").WithMountPath(podTLSDir).WithReadOnly(true),
			corev1ac.VolumeMount().WithName("tokens").WithMountPath(tokensDir).WithReadOnly(true),
		).
		WithStartupProbe(httpProbe(kv, "/healthz", 1, 60)).
		WithLivenessProbe(httpProbe(kv, "/healthz", 10, 3)).
		WithReadinessProbe(httpProbe(kv, "/readyz", 5, 2)).
		WithSecurityContext(corev1ac.SecurityContext().
			WithRunAsNonRoot(true).
			WithRunAsUser(serverUID).
			WithRunAsGroup(serverUID).
			WithAllowPrivilegeEscalation(false).
			WithReadOnlyRootFilesystem(true).
			WithCapabilities(corev1ac.Capabilities().WithDrop("ALL")).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault)))
	if podAPITLS(kv) {
		container.WithArgs("--tls-cert-file="+podTLSDir+"/"+corev1.TLSCertKey, "--tls-key-file="+podTLSDir+"/"+corev1.TLSPrivateKeyKey)
	}
	if kv.Spec.ImagePullPolicy != "" {
		container.WithImagePullPolicy(kv.Spec.ImagePullPolicy)
	}
	res := serverResources(kv)
	container.WithResources(resourcesAC(res))
	if v, ok := goMemLimit(res); ok {
		container.WithEnv(corev1ac.EnvVar().WithName("GOMEMLIMIT").WithValue(v))
	}

	pod := corev1ac.PodSpec().
		WithAutomountServiceAccountToken(false).
		WithEnableServiceLinks(false).
		WithTerminationGracePeriodSeconds(30).
		WithSecurityContext(corev1ac.PodSecurityContext().
			WithRunAsNonRoot(true).
			WithRunAsUser(serverUID).
			WithRunAsGroup(serverUID).
			WithFSGroup(serverUID).
			WithFSGroupChangePolicy(corev1.FSGroupChangeOnRootMismatch).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
		WithContainers(container).
		WithVolumes(corev1ac.Volume().WithName("config").WithConfigMap(
			corev1ac.ConfigMapVolumeSource().WithName(n.config).WithDefaultMode(0o444)),
			// 0o440 with fsGroup: the keys are readable by the server's
			// group only.
			corev1ac.Volume().WithName("pod-tls").WithSecret(
				corev1ac.SecretVolumeSource().WithSecretName(n.podTLS).WithDefaultMode(0o440)),
			corev1ac.Volume().WithName("tokens").WithSecret(
				corev1ac.SecretVolumeSource().WithSecretName(n.tokens).WithDefaultMode(0o440)))
	for _, s := range kv.Spec.ImagePullSecrets {
		pod.WithImagePullSecrets(corev1ac.LocalObjectReference().WithName(s.Name))
	}
	if len(kv.Spec.NodeSelector) > 0 {
		pod.WithNodeSelector(kv.Spec.NodeSelector)
	}
	for i := range kv.Spec.Tolerations {
		pod.WithTolerations(tolerationAC(kv.Spec.Tolerations[i]))
	}
	pod.WithAffinity(affinityAC(kv))

	// Not corev1ac.PersistentVolumeClaim(): a claim template has no kind,
	// apiVersion or namespace of its own.
	pvc := (&corev1ac.PersistentVolumeClaimApplyConfiguration{}).
		WithName("data").
		WithLabels(selectorLabels(kv)).
		WithSpec(corev1ac.PersistentVolumeClaimSpec().
			WithAccessModes(corev1.ReadWriteOnce).
			WithVolumeMode(corev1.PersistentVolumeFilesystem). // the default, set so a re-read compares equal
			WithResources(corev1ac.VolumeResourceRequirements().
				WithRequests(corev1.ResourceList{corev1.ResourceStorage: storageSize(kv)})))
	if sc := kv.Spec.Storage.StorageClassName; sc != nil {
		pvc.Spec.WithStorageClassName(*sc)
	}

	return appsv1ac.StatefulSet(n.kv, n.namespace).
		WithLabels(labels(kv, "server")).
		WithOwnerReferences(ownerRef(kv)).
		WithSpec(appsv1ac.StatefulSetSpec().
			WithReplicas(stsReplicas).
			WithServiceName(n.peers).
			// Parallel: a restarted replicated store needs its peers up to
			// form a quorum; starting them one at a time could deadlock.
			WithPodManagementPolicy(appsv1.ParallelPodManagement).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels(kv))).
			WithUpdateStrategy(appsv1ac.StatefulSetUpdateStrategy().WithType(appsv1.RollingUpdateStatefulSetStrategyType)).
			WithPersistentVolumeClaimRetentionPolicy(appsv1ac.StatefulSetPersistentVolumeClaimRetentionPolicy().
				WithWhenDeleted(appsv1.RetainPersistentVolumeClaimRetentionPolicyType).
				WithWhenScaled(whenScaled(kv))).
			WithVolumeClaimTemplates(pvc).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(podLabels).
				WithAnnotations(map[string]string{ConfigHashAnnotation: hash}).
				WithSpec(pod)))
}

func httpProbe(kv *kvv1.KVStore, path string, period, failures int32) *corev1ac.ProbeApplyConfiguration {
	// HTTPS when the API port serves the pods' certificate; the kubelet
	// does not verify it.
	scheme := corev1.URISchemeHTTP
	if podAPITLS(kv) {
		scheme = corev1.URISchemeHTTPS
	}
	return corev1ac.Probe().
		WithHTTPGet(corev1ac.HTTPGetAction().WithPath(path).WithPort(intstr.FromString("http")).WithScheme(scheme)).
		WithPeriodSeconds(period).
		WithTimeoutSeconds(2).
		WithFailureThreshold(failures)
}

// affinityAC is spec.affinity, or by default a preference for spreading the
// pods of one KVStore over nodes.
func affinityAC(kv *kvv1.KVStore) *corev1ac.AffinityApplyConfiguration {
	if kv.Spec.Affinity != nil {
		return convertAC[corev1ac.AffinityApplyConfiguration](kv.Spec.Affinity)
	}
	return corev1ac.Affinity().WithPodAntiAffinity(corev1ac.PodAntiAffinity().
		WithPreferredDuringSchedulingIgnoredDuringExecution(corev1ac.WeightedPodAffinityTerm().
			WithWeight(100).
			WithPodAffinityTerm(corev1ac.PodAffinityTerm().
				WithTopologyKey(corev1.LabelHostname).
				WithLabelSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels(kv))))))
}

func tolerationAC(t corev1.Toleration) *corev1ac.TolerationApplyConfiguration {
	return convertAC[corev1ac.TolerationApplyConfiguration](&t)
}

func resourcesAC(r corev1.ResourceRequirements) *corev1ac.ResourceRequirementsApplyConfiguration {
	return convertAC[corev1ac.ResourceRequirementsApplyConfiguration](&r)
}

func whenScaled(kv *kvv1.KVStore) appsv1.PersistentVolumeClaimRetentionPolicyType {
	if kv.Spec.Storage.DeleteClaimsOnScaleDown {
		return appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	}
	return appsv1.RetainPersistentVolumeClaimRetentionPolicyType
}
