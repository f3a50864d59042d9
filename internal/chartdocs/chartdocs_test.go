package chartdocs

import (
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	tests := []struct {
		name, values string
		rows         []string // substrings of the table, in order
		err          string   // substring of the error; "" for none
	}{
		{
			name: "leaves and described maps",
			values: `# header, not a description

image:
  # -- Image repository.
  repository: kvstore/operator
  # -- Tag | with a pipe.
  # Continued here.
  tag: ""
# -- Pod resources.
resources:
  requests:
    cpu: 10m
# -- Pull secrets.
imagePullSecrets: []
`,
			rows: []string{
				"| `image.repository` | string | `\"kvstore/operator\"` | Image repository. |",
				"| `image.tag` | string | `\"\"` | Tag \\| with a pipe. Continued here. |",
				"| `resources` | object | `{\"requests\":{\"cpu\":\"10m\"}}` | Pod resources. |",
				"| `imagePullSecrets` | list | `[]` | Pull secrets. |",
			},
		},
		{
			name:   "undescribed value",
			values: "# -- Described.\na: 1\nb: 2\n",
			err:    "values.yaml: b has no",
		},
		{
			name:   "undescribed key in an undescribed map",
			values: "m:\n  # -- Described.\n  x: 1\n  w: {z: 2}\n",
			err:    "values.yaml: m.w.z has no",
		},
		{
			name:   "description of nothing",
			values: "a:\n  # -- Dangling.\n  - item\n",
			err:    "is not followed by a key",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			table, err := Table([]byte(tc.values))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rest := table
			for _, r := range tc.rows {
				i := strings.Index(rest, r)
				if i < 0 {
					t.Fatalf("no row %q (in order) in\n%s", r, table)
				}
				rest = rest[i+len(r):]
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	readme := "# Chart\n\n" + BeginMarker + "\nold table\n" + EndMarker + "\nafter\n"
	got, err := Update([]byte(readme), "new table\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Chart\n\n" + BeginMarker + "\nnew table\n" + EndMarker + "\nafter\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := Update([]byte("no markers"), "x"); err == nil {
		t.Fatal("a README without markers was accepted")
	}
}
