package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParsePeerTokens(t *testing.T) {
	a, b := strings.Repeat("a", 16), strings.Repeat("b", 20)
	cases := map[string]struct {
		text string
		want []string
		err  string // the error contains it; "" for none
	}{
		"one token":                {text: a, want: []string{a}},
		"one token and a newline":  {text: a + "\n", want: []string{a}},
		"next accepted":            {text: a + "\n" + b + "\n", want: []string{a, b}},
		"comments and blank lines": {text: "# rotating\n\n  " + b + "  \n# old\n" + a, want: []string{b, a}},
		"CRLF":                     {text: b + "\r\n" + a + "\r\n", want: []string{b, a}},
		"empty":                    {text: "\n# nothing\n", err: ErrNoPeerToken.Error()},
		"short":                    {text: a + "\nshort", err: "line 2: the peer token must be at least 16 characters"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParsePeerTokens(tc.text)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "short") || strings.Contains(err.Error(), a) {
					t.Errorf("the error %q holds a token", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("tokens %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := ParsePeerTokens(""); !errors.Is(err, ErrNoPeerToken) {
		t.Errorf("empty text: %v, want ErrNoPeerToken", err)
	}
}
