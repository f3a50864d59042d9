package procstat

import (
	"os"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    Memory
		wantErr bool
	}{
		{
			name:   "typical",
			status: "Name:\tkvstore\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t8\n",
			want:   Memory{PeakRSS: 20480 * 1024, RSS: 10240 * 1024},
		},
		{
			name:   "order does not matter",
			status: "VmRSS:\t1 kB\nVmHWM:\t2 kB\n",
			want:   Memory{PeakRSS: 2048, RSS: 1024},
		},
		{
			name:   "anonymous and file-backed",
			status: "VmHWM:\t 300 kB\nVmRSS:\t 250 kB\nRssAnon:\t 50 kB\nRssFile:\t 200 kB\n",
			want:   Memory{PeakRSS: 300 * 1024, RSS: 250 * 1024, Anon: 50 * 1024, File: 200 * 1024},
		},
		{name: "missing fields", status: "Name:\tkthreadd\nState:\tS (sleeping)\n", wantErr: true},
		{name: "only HWM", status: "VmHWM:\t2 kB\n", wantErr: true},
		{name: "bad unit", status: "VmHWM:\t2 MB\nVmRSS:\t1 kB\n", wantErr: true},
		{name: "bad number", status: "VmHWM:\tx kB\nVmRSS:\t1 kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.status)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse() error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Parse() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadSelf(t *testing.T) {
	m, err := Read(os.Getpid())
	if err != nil {
		t.Fatalf("Read(self) = %v", err)
	}
	if m.PeakRSS == 0 || m.RSS == 0 || m.PeakRSS < m.RSS {
		t.Errorf("implausible memory figures: %+v", m)
	}
}
