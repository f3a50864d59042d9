package main

import (
	"slices"
	"testing"
)

func TestShellQuote(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bin/kvbench", "-duration", "5s"}, "bin/kvbench -duration 5s"},
		{[]string{"bin/kvbench", "-out", ""}, "bin/kvbench -out ''"},
		{[]string{"a b", "it's"}, `'a b' 'it'\''s'`},
		{[]string{"-clients=1,16,64"}, "-clients=1,16,64"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.args); got != tt.want {
			t.Errorf("shellQuote(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestParseEtcdVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"etcd Version: 3.6.16\nGit SHA: x\nGo Version: go1.26.8\n", "3.6.16"},
		{"garbage\n", ""},
	}
	for _, tt := range tests {
		if got := parseEtcdVersion(tt.in); got != tt.want {
			t.Errorf("parseEtcdVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseClientsAndTargets(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"1,16,64", []int{1, 16, 64}, false},
		{" 8 , 8,2 ", []int{8, 2}, false},
		{"", nil, true},
		{"0", nil, true},
		{"x", nil, true},
	}
	for _, tt := range tests {
		got, err := parseClients(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseClients(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if _, err := parseTargets("kvstore,nope"); err == nil {
		t.Error("parseTargets with unknown target: want error")
	}
	if got, err := parseTargets("etcd,kvstore,etcd"); err != nil || !slices.Equal(got, []string{"etcd", "kvstore"}) {
		t.Errorf("parseTargets = %v, %v", got, err)
	}
}
