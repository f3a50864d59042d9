package procstat

import "testing"

func TestParseCPUModel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nmodel name\t: other\n", "AMD EPYC 7B13"},
		{"processor\t: 0\n", "unknown CPU"},
	}
	for _, tt := range tests {
		if got := parseCPUModel(tt.in); got != tt.want {
			t.Errorf("parseCPUModel() = %q, want %q", got, tt.want)
		}
	}
}
