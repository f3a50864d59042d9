package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"kvstore.dev/kvstore/client"
)

func Example() {
	ctx := context.Background()
	// One endpoint, or several separated by commas (the nodes of a cluster).
	c := client.New(exampleURL, client.WithToken(exampleToken))

	if _, err := c.Put(ctx, "greetings/en", []byte("hello"), client.TTL(time.Hour)); err != nil {
		fmt.Println(err)
		return
	}
	kv, err := c.Get(ctx, "greetings/en")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s = %s (version %d, expires: %t)\n", kv.Key, kv.Value, kv.Version, kv.ExpiresAt != nil)

	if _, err := c.Get(ctx, "greetings/fr"); errors.Is(err, client.ErrNotFound) {
		fmt.Println("greetings/fr: not found")
	}
	// Output:
	// greetings/en = hello (version 1, expires: true)
	// greetings/fr: not found
}

// Conditional writes: create only, then compare-and-swap on the revision.
func ExampleClient_Put() {
	ctx := context.Background()
	c := client.New(exampleURL, client.WithToken(exampleToken))

	res, err := c.Put(ctx, "locks/job", []byte("worker-1"), client.IfAbsent())
	fmt.Println("created:", res.Created, err)
	_, err = c.Put(ctx, "locks/job", []byte("worker-2"), client.IfAbsent())
	fmt.Println("again:", errors.Is(err, client.ErrPreconditionFailed))

	_, err = c.Put(ctx, "locks/job", []byte("worker-1, renewed"), client.IfMatch(res.Revision))
	fmt.Println("swap at the revision read:", err)
	_, err = c.Put(ctx, "locks/job", []byte("worker-2"), client.IfMatch(res.Revision))
	fmt.Println("swap at a stale revision:", errors.Is(err, client.ErrPreconditionFailed))

	// A write whose outcome is unknown (the server answered outcome_unknown,
	// or the connection dropped after it was sent) is told apart:
	if errors.Is(err, client.ErrOutcomeUnknown) {
		fmt.Println("read the key before retrying")
	}
	// Output:
	// created: true <nil>
	// again: true
	// swap at the revision read: <nil>
	// swap at a stale revision: true
}

func ExampleClient_List() {
	ctx := context.Background()
	c := client.New(exampleURL, client.WithToken(exampleToken))
	for _, k := range []string{"fruit/apple", "fruit/banana", "fruit/cherry"} {
		if _, err := c.Put(ctx, k, []byte("ripe")); err != nil {
			fmt.Println(err)
			return
		}
	}
	// Pages of two keys, read as the loop goes.
	for kv, err := range c.List(ctx, client.ListOptions{Prefix: "fruit/", PageSize: 2}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(kv.Key, string(kv.Value))
	}
	res, err := c.DeletePrefix(ctx, "fruit/")
	fmt.Println("deleted", res.Deleted, err)
	// Output:
	// fruit/apple ripe
	// fruit/banana ripe
	// fruit/cherry ripe
	// deleted 3 <nil>
}

func ExampleClient_Watch() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := client.New(exampleURL, client.WithToken(exampleToken))

	// Watch from the current revision: nothing after it is missed, even if
	// the stream drops and is resumed.
	st, err := c.Status(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		_, _ = c.Put(ctx, "jobs/1", []byte("queued"))
		_, _ = c.Delete(ctx, "jobs/1")
	}()
	n := 0
	for ev, err := range c.Watch(ctx, client.WatchOptions{Prefix: "jobs/", Since: st.Revision}) {
		if errors.Is(err, client.ErrCompacted) {
			fmt.Println("history gone: list again, then watch from the list's revision")
			return
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(ev.Type, ev.Key, string(ev.Value))
		if n++; n == 2 {
			break
		}
	}
	// Output:
	// put jobs/1 queued
	// delete jobs/1
}
