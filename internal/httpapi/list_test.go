package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"kvstore.dev/kvstore/wire"
)

// TestListPageByteCap: values whose total exceeds the page's byte cap come
// back over several pages, each cut with next, and following next returns
// every key exactly once, in order. The body is valid JSON of the
// documented shape although it is streamed.
func TestListPageByteCap(t *testing.T) {
	ts := newTestServer(t)
	ts.api.opts.MaxListPageBytes = 2500 // two 1000-byte values and their keys
	const n = 7
	for i := range n {
		ts.do(t, req{method: "PUT", path: fmt.Sprintf("/api/v1/kv/big/%d", i), token: adminToken, body: strings.Repeat("x", 1000)})
	}
	var got []string
	pages, after := 0, ""
	for pages < 2*n {
		resp := ts.do(t, req{method: "GET", path: "/api/v1/kv?prefix=big/&limit=1000&after=" + after, token: roToken})
		var page wire.ListResponse
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 {
			t.Fatalf("page %d: %d, %v", pages, resp.StatusCode, err)
		}
		pages++
		if len(page.Items) > 2 {
			t.Errorf("page %d holds %d items, want at most 2 under the byte cap", pages, len(page.Items))
		}
		for _, it := range page.Items {
			got = append(got, it.Key)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	want := []string{"big/0", "big/1", "big/2", "big/3", "big/4", "big/5", "big/6"}
	if fmt.Sprint(got) != fmt.Sprint(want) || pages != 4 {
		t.Errorf("keys over %d pages (-want +got):\n- %v\n+ %v", pages, want, got)
	}
}
