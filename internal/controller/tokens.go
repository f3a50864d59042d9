package controller

import (
	"encoding/hex"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/yaml"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/auth"
)

// minTokenLength is the shortest token the servers accept (as
// internal/config).
const minTokenLength = 16

// tokenEntry is one entry of the servers' tokens file (auth.tokens_file,
// internal/config): the token as its SHA-256 digest, so the plain token
// stays in the user's Secret alone.
type tokenEntry struct {
	Name     string    `json:"name"`
	SHA256   string    `json:"sha256"`
	Role     auth.Role `json:"role"`
	Prefixes []string  `json:"prefixes,omitempty"`
}

// renderTokens renders spec.auth.tokens into the tokens file, reading each
// token from the observed Secrets (secret returns nil for a missing one).
// A token whose Secret or key is missing, too short, or whose prefix the
// servers would refuse is a problem naming the field.
func renderTokens(kv *kvv1.KVStore, secret func(name string) *corev1.Secret) (string, error) {
	doc := struct {
		Tokens []tokenEntry `json:"tokens"`
	}{Tokens: []tokenEntry{}}
	for i, t := range kv.Spec.Auth.Tokens {
		field := fmt.Sprintf("spec.auth.tokens[%d]", i)
		s := secret(t.SecretRef.Name)
		if s == nil {
			return "", &problem{"TokenSecretNotFound", fmt.Sprintf("Secret %s (%s.secretRef.name) does not exist in namespace %s", t.SecretRef.Name, field, kv.Namespace)}
		}
		tok, ok := s.Data[t.SecretRef.Key]
		switch {
		case !ok:
			return "", &problem{"TokenSecretInvalid", fmt.Sprintf("Secret %s has no key %q (%s.secretRef.key)", t.SecretRef.Name, t.SecretRef.Key, field)}
		case len(tok) < minTokenLength:
			return "", &problem{"TokenSecretInvalid", fmt.Sprintf("the token in Secret %s key %q (%s.secretRef) is shorter than %d characters", t.SecretRef.Name, t.SecretRef.Key, field, minTokenLength)}
		}
		if !auth.Role(t.Role).Valid() {
			return "", &problem{"TokenInvalid", fmt.Sprintf("%s.role: %q is not one of admin, readwrite, readonly", field, t.Role)}
		}
		for j, p := range t.Prefixes {
			if err := auth.ValidPrefix(p); err != nil {
				return "", &problem{"TokenInvalid", fmt.Sprintf("%s.prefixes[%d]: %q %v", field, j, p, err)}
			}
		}
		d := auth.Digest(string(tok))
		doc.Tokens = append(doc.Tokens, tokenEntry{Name: t.Name, SHA256: hex.EncodeToString(d[:]), Role: auth.Role(t.Role), Prefixes: slices.Clone(t.Prefixes)})
	}
	b, err := yaml.Marshal(doc)
	if err != nil { // strings and lists of strings always marshal
		panic(fmt.Sprintf("render tokens file: %v", err))
	}
	return string(b), nil
}

// tokenSecretNames are the Secrets spec.auth.tokens reads.
func tokenSecretNames(kv *kvv1.KVStore) []string {
	var out []string
	for _, t := range kv.Spec.Auth.Tokens {
		if !slices.Contains(out, t.SecretRef.Name) {
			out = append(out, t.SecretRef.Name)
		}
	}
	return out
}

// desiredTokensSecret is <name>-tokens holding the rendered tokens file.
// It is mounted as a volume (not through the environment) and is not part
// of the config hash, so a change reaches the running servers, which
// re-read the file, without rolling the pods.
func desiredTokensSecret(kv *kvv1.KVStore, file string) *corev1ac.SecretApplyConfiguration {
	n := namesFor(kv)
	return corev1ac.Secret(n.tokens, n.namespace).
		WithLabels(labels(kv, "tokens")).
		WithOwnerReferences(ownerRef(kv)).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{tokensFile: []byte(file)})
}
