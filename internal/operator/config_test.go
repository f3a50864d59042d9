package operator

import (
	"io"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	cases := map[string]struct {
		args  []string
		want  string // substring of the error; "" means valid
		check func(Config) bool
	}{
		"defaults": {nil, "", func(c Config) bool {
			return c.LeaderElect && c.DefaultImage == DefaultImage && c.MetricsAddr == ":8443" && c.MetricsSecure && c.WatchNamespace == ""
		}},
		"one namespace": {[]string{"--watch-namespace", "team-a", "--leader-elect=false"}, "", func(c Config) bool {
			return c.WatchNamespace == "team-a" && !c.LeaderElect
		}},
		"metrics off":         {[]string{"--metrics-bind-address", "0"}, "", func(c Config) bool { return c.MetricsAddr == "0" }},
		"bad namespace":       {[]string{"--watch-namespace", "Team_A"}, "--watch-namespace: \"Team_A\" is not a namespace name", nil},
		"bad probe address":   {[]string{"--health-probe-bind-address", "8081"}, "--health-probe-bind-address:", nil},
		"empty image":         {[]string{"--default-image", " "}, "--default-image:", nil},
		"bad log level":       {[]string{"--log-level", "loud"}, "--log-level: \"loud\" is not one of debug, info, error", nil},
		"bad cluster domain":  {[]string{"--cluster-domain", "-x-"}, "--cluster-domain:", nil},
		"too many reconciles": {[]string{"--max-concurrent-reconciles", "0"}, "--max-concurrent-reconciles: 0 is out of range 1..64", nil},
		"unknown flag":        {[]string{"--nope"}, "flag provided but not defined: -nope", nil},
		"stray argument":      {[]string{"serve"}, "unexpected arguments: serve", nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := Load(tc.args, io.Discard)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if !tc.check(c) {
					t.Errorf("config %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestValidateNamesEveryBadFlag(t *testing.T) {
	c := Default()
	c.ProbeAddr, c.LogFormat, c.DefaultImage = "x", "xml", ""
	err := c.Validate()
	for _, flag := range []string{"--health-probe-bind-address", "--log-format", "--default-image"} {
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("error %v does not name %s", err, flag)
		}
	}
}
