package procstat

import (
	"os"
	"testing"
)

func TestParseTCPStats(t *testing.T) {
	const names = "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n"
	tests := []struct {
		name    string
		snmp    string
		want    TCPStats
		wantErr bool
	}{
		{
			name: "typical",
			snmp: "Ip: Forwarding DefaultTTL\nIp: 1 64\n" + names +
				"Tcp: 1 200 120000 -1 7 65 0 0 3 20 20 0 0 0 0\nUdp: InDatagrams\nUdp: 0\n",
			want: TCPStats{ActiveOpens: 7, PassiveOpens: 65, CurrEstab: 3},
		},
		{name: "no tcp lines", snmp: "Ip: Forwarding\nIp: 1\n", wantErr: true},
		{name: "names only", snmp: names, wantErr: true},
		{name: "short values", snmp: names + "Tcp: 1 200\n", wantErr: true},
		{name: "not a number", snmp: names + "Tcp: 1 200 120000 -1 x 65 0 0 3 20 20 0 0 0 0\n", wantErr: true},
		{name: "missing counter", snmp: "Tcp: ActiveOpens PassiveOpens\nTcp: 1 2\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTCPStats(tt.snmp)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadTCPStatsSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/snmp"); err != nil {
		t.Skip("no /proc/self/net/snmp")
	}
	if _, err := ReadTCPStats(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}
