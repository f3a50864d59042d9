package operatorbench

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// Ref names one object: its kind, namespace and name.
type Ref struct{ Kind, Namespace, Name string }

func (r Ref) String() string { return r.Kind + " " + r.Namespace + "/" + r.Name }

// entry is what the tracker knows about one existing object.
type entry struct {
	seen     time.Time // when the bench first saw it (list or ADDED event)
	updates  int       // MODIFIED events since
	gen, obs int64     // metadata.generation and, for KVStores, status.observedGeneration
	owner    types.UID // of its controller owner reference, if any
	obsAt    time.Time // when status.observedGeneration first equalled the generation
}

// Tracker watches the API server (an uncached client, one watch per kind,
// all namespaces) and records when each object of the tracked kinds first
// appeared and how often it was modified after. Waiting on it costs no
// polling: every event wakes the waiters.
type Tracker struct {
	mu      sync.Mutex
	objs    map[Ref]*entry
	changed chan struct{} // closed and replaced on every event
}

// StartTracker lists every tracked kind and watches it until ctx is done;
// it returns once all initial lists are in.
func StartTracker(ctx context.Context, c client.WithWatch) (*Tracker, error) {
	t := &Tracker{objs: map[Ref]*entry{}, changed: make(chan struct{})}
	ready := make(chan error, len(trackedKinds))
	for _, k := range trackedKinds {
		go t.run(ctx, c, k.kind, k.list, ready)
	}
	for range trackedKinds {
		if err := <-ready; err != nil {
			return nil, err
		}
	}
	return t, nil
}

// run lists and watches one kind, and lists again whenever the watch ends.
func (t *Tracker) run(ctx context.Context, c client.WithWatch, kind string, newList func() client.ObjectList, ready chan<- error) {
	first := true
	for ctx.Err() == nil {
		list := newList()
		err := c.List(ctx, list)
		var w watch.Interface
		if err == nil {
			items, _ := meta.ExtractList(list)
			for _, it := range items {
				t.record(kind, watch.Added, it.(client.Object))
			}
			w, err = c.Watch(ctx, newList(), &client.ListOptions{Raw: &metav1.ListOptions{
				ResourceVersion: list.GetResourceVersion(), AllowWatchBookmarks: true}})
		}
		if first {
			first = false
			if err != nil {
				err = fmt.Errorf("list and watch %s: %w", kind, err)
			}
			ready <- err
			if err != nil {
				return
			}
		}
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			if o, ok := ev.Object.(client.Object); ok && ev.Type != watch.Bookmark && ev.Type != watch.Error {
				t.record(kind, ev.Type, o)
			}
		}
		w.Stop()
	}
}

func (t *Tracker) record(kind string, typ watch.EventType, o client.Object) {
	now := time.Now()
	ref := Ref{kind, o.GetNamespace(), o.GetName()}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.objs[ref]
	switch {
	case typ == watch.Deleted:
		delete(t.objs, ref)
	case e == nil:
		e = &entry{seen: now}
		t.objs[ref] = e
	case typ == watch.Modified:
		e.updates++
	}
	if e != nil && typ != watch.Deleted {
		e.gen = o.GetGeneration()
		if ref := metav1.GetControllerOf(o); ref != nil {
			e.owner = ref.UID
		}
		if kv, ok := o.(*kvv1.KVStore); ok {
			e.obs = kv.Status.ObservedGeneration
			if e.obsAt.IsZero() && e.gen > 0 && e.obs == e.gen {
				e.obsAt = now
			}
		}
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

// WaitExist waits until every object in refs exists and returns the
// latest of the times they were first seen.
func (t *Tracker) WaitExist(ctx context.Context, refs []Ref) (time.Time, error) {
	return t.wait(ctx, func() (time.Time, []Ref) {
		var last time.Time
		var missing []Ref
		for _, r := range refs {
			e := t.objs[r]
			if e == nil {
				missing = append(missing, r)
			} else if e.seen.After(last) {
				last = e.seen
			}
		}
		return last, missing
	})
}

// WaitObserved waits until the status.observedGeneration of each KVStore in
// kvs equals its generation and returns the latest time that happened.
func (t *Tracker) WaitObserved(ctx context.Context, kvs []Ref) (time.Time, error) {
	return t.wait(ctx, func() (time.Time, []Ref) {
		var last time.Time
		var missing []Ref
		for _, r := range kvs {
			e := t.objs[r]
			if e == nil || e.obsAt.IsZero() {
				missing = append(missing, r)
			} else if e.obsAt.After(last) {
				last = e.obsAt
			}
		}
		return last, missing
	})
}

func (t *Tracker) wait(ctx context.Context, check func() (time.Time, []Ref)) (time.Time, error) {
	for {
		t.mu.Lock()
		last, missing := check()
		changed := t.changed
		t.mu.Unlock()
		if len(missing) == 0 {
			return last, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%d objects still missing or not observed, e.g. %v: %w", len(missing), missing[0], ctx.Err())
		}
	}
}

// Owned lists the existing objects whose controller is the object with
// uid, sorted by kind and name.
func (t *Tracker) Owned(uid types.UID) []Ref {
	t.mu.Lock()
	defer t.mu.Unlock()
	var refs []Ref
	for r, e := range t.objs {
		if e.owner == uid {
			refs = append(refs, r)
		}
	}
	slices.SortFunc(refs, func(a, b Ref) int { return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name)) })
	return refs
}

// Updates is the number of MODIFIED events seen for the objects in refs
// after they were first seen.
func (t *Tracker) Updates(refs []Ref) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, r := range refs {
		if e := t.objs[r]; e != nil {
			n += e.updates
		}
	}
	return n
}
