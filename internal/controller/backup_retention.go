package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/backup"
)

// retentionOf is spec.backup.retention as internal/backup reads it; the
// zero Retention (keep everything) when there is none. MaxAge was checked
// by the CRD's pattern; one that does not parse keeps everything.
func retentionOf(kv *kvv1.KVStore) (backup.Retention, error) {
	if kv == nil || kv.Spec.Backup == nil {
		return backup.Retention{}, nil
	}
	in := kv.Spec.Backup.Retention
	var r backup.Retention
	if in.KeepLast != nil {
		r.KeepLast = int(*in.KeepLast)
	}
	if in.MaxAge != "" {
		age, err := backup.ParseAge(in.MaxAge)
		if err != nil {
			return backup.Retention{}, fmt.Errorf("spec.backup.retention.maxAge: %w", err)
		}
		r.MaxAge = age
	}
	return r, r.Validate()
}

// prune applies kv's retention to dest, its spec.backup.destination, after
// a scheduled backup succeeded: every backup there counts (the newest is
// never deleted), and the scheduled KVStoreBackups whose backups were
// deleted are deleted too. It returns the names of the backups deleted.
func (r *BackupReconciler) prune(ctx context.Context, kv *kvv1.KVStore, dest backup.Destination) ([]string, error) {
	ret, err := retentionOf(kv)
	if err != nil || (ret.KeepLast == 0 && ret.MaxAge == 0) {
		return nil, err
	}
	deleted, pruneErr := backup.Prune(ctx, dest, ret, r.now())
	names := make([]string, 0, len(deleted))
	for _, m := range deleted {
		names = append(names, m.Name)
	}
	return names, errors.Join(pruneErr, r.deleteScheduled(ctx, kv, names))
}

// deleteScheduled deletes kv's scheduled KVStoreBackups that succeeded
// with one of the backups named (the retention deleted them; a backup
// Job's retention reports them in its result).
func (r *BackupReconciler) deleteScheduled(ctx context.Context, kv *kvv1.KVStore, names []string) error {
	if len(names) == 0 {
		return nil
	}
	gone := make(map[string]bool, len(names))
	for _, n := range names {
		gone[n] = true
	}
	list := &kvv1.KVStoreBackupList{}
	if err := r.Client.List(ctx, list, client.InNamespace(kv.Namespace),
		client.MatchingLabels{kvv1.LabelKVStore: kv.Name, kvv1.LabelScheduled: "true"}); err != nil {
		return fmt.Errorf("list scheduled backups: %w", err)
	}
	var errs []error
	for i := range list.Items {
		b := &list.Items[i]
		if b.Status.Phase == kvv1.BackupSucceeded && gone[b.Status.BackupName] {
			if err := r.Client.Delete(ctx, b); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("delete KVStoreBackup %s: %w", b.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// prunedEvents tells on kv what the retention deleted (pruned, and
// omitted more not named) and why it failed (err).
func (r *BackupReconciler) prunedEvents(kv *kvv1.KVStore, pruned []string, omitted int, err error) {
	if len(pruned) > 0 {
		more := ""
		if omitted > 0 {
			more = fmt.Sprintf(" and %d more (their KVStoreBackups are kept)", omitted)
		}
		r.Recorder.Eventf(kv, nil, corev1.EventTypeNormal, ReasonBackupsPruned, "Prune", "retention deleted %d backups: %s%s", len(pruned)+omitted, strings.Join(pruned, ", "), more)
	}
	if err != nil {
		r.Recorder.Eventf(kv, nil, corev1.EventTypeWarning, ReasonPruneFailed, "Prune", "retention: %v", err)
	}
}

// pruneTimeout bounds one retention run.
const pruneTimeout = 5 * time.Minute
