package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunRefusesBadFlags(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--log-level", "loud", "--watch-namespace", "Bad_NS"}, &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--log-level") || !strings.Contains(err.Error(), "--watch-namespace") {
		t.Fatalf("run: %v", err)
	}
}

func TestRunHelp(t *testing.T) {
	var stderr bytes.Buffer
	_ = run(context.Background(), []string{"-h"}, &bytes.Buffer{}, &stderr)
	for _, flag := range []string{"-watch-namespace", "-default-image", "-leader-elect", "-metrics-bind-address", "-health-probe-bind-address"} {
		if !strings.Contains(stderr.String(), flag) {
			t.Errorf("help lacks %s", flag)
		}
	}
}
