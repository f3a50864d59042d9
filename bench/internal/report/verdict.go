package report

import (
	"fmt"
	"time"
)

// Goals the project is judged by.
const (
	GoalPutVsEtcd     = 1.5
	GoalGetVsEtcd     = 1.0
	GoalGetVsBare     = 0.8
	GoalPutP99        = 20 * time.Millisecond
	GoalLoadRSSBytes  = 300_000_000
	GoalLoadRSSValues = 1_000_000
)

// Verdict is one judged target.
type Verdict struct {
	Name     string
	Measured string
	Goal     string
	// Met is false both when the goal was missed and when it could not
	// be measured (Measured then says why).
	Met bool
}

// Mark renders Met as a check mark or cross.
func (v Verdict) Mark() string {
	if v.Met {
		return "✅"
	}
	return "❌"
}

// Verdicts judges the report against the project's targets.
func (r Report) Verdicts() []Verdict {
	c := r.JudgeClients
	kv, okKV := r.Find(KVStore, c)
	et, okEt := r.Find(Etcd, c)
	bare, okBare := r.Find(BareHTTP, c)

	ratio := func(name string, num, den float64, okNum, okDen bool, numName, denName string, goal float64) Verdict {
		v := Verdict{Name: name, Goal: fmt.Sprintf("≥ %.1f×", goal)}
		switch {
		case !okNum:
			v.Measured = fmt.Sprintf("not measured (no %s result at %d clients)", numName, c)
		case !okDen:
			v.Measured = fmt.Sprintf("not measured (no %s result at %d clients)", denName, c)
		case den <= 0:
			v.Measured = fmt.Sprintf("not measured (%s did 0 ops/s)", denName)
		default:
			q := num / den
			v.Measured = fmt.Sprintf("%.3f× (%s / %s ops/s)", q, Rate(num), Rate(den))
			v.Met = q >= goal
		}
		return v
	}

	out := []Verdict{
		ratio("kvstore PUT / etcd PUT", kv.Put.OpsPerSec(), et.Put.OpsPerSec(), okKV, okEt, KVStore, Etcd, GoalPutVsEtcd),
		ratio("kvstore GET / etcd GET", kv.Get.OpsPerSec(), et.Get.OpsPerSec(), okKV, okEt, KVStore, Etcd, GoalGetVsEtcd),
		ratio("kvstore GET / bare-HTTP GET", kv.Get.OpsPerSec(), bare.Get.OpsPerSec(), okKV, okBare, KVStore, BareHTTP, GoalGetVsBare),
	}

	p99 := Verdict{Name: "kvstore PUT p99", Goal: "< " + Latency(GoalPutP99)}
	if okKV && kv.Put.Ops > 0 {
		p99.Measured = Latency(kv.Put.P99)
		p99.Met = kv.Put.P99 < GoalPutP99
	} else {
		p99.Measured = fmt.Sprintf("not measured (no kvstore result at %d clients)", c)
	}
	out = append(out, p99)

	mem := Verdict{
		Name: fmt.Sprintf("kvstore peak RSS after %s values", Count(GoalLoadRSSValues)),
		Goal: "< " + Bytes(GoalLoadRSSBytes),
	}
	switch l := r.Load; {
	case l == nil:
		mem.Measured = "not measured (load phase skipped)"
	case l.Err != "":
		mem.Measured = "not measured (" + l.Err + ")"
	case !l.Complete():
		mem.Measured = fmt.Sprintf("%s, but only %s of %s values stored and verified", Bytes(l.PeakRSS), Count(uint64(l.Put.Ops)), Count(l.Want))
	case l.Want < GoalLoadRSSValues:
		mem.Measured = fmt.Sprintf("%s after only %s values (shortened run)", Bytes(l.PeakRSS), Count(l.Want))
	default:
		mem.Measured = Bytes(l.PeakRSS)
		mem.Met = l.PeakRSS < GoalLoadRSSBytes
	}
	if l := r.Load; l != nil && l.Err == "" && l.RSSAnon+l.RSSFile > 0 {
		mem.Measured += fmt.Sprintf(" (at the end: %s anonymous + %s mapped file pages)", Bytes(l.RSSAnon), Bytes(l.RSSFile))
	}
	out = append(out, mem)
	return out
}
