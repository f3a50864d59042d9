package backup

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func TestSchedulePeriod(t *testing.T) {
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	from := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC) // a Thursday
	cases := map[string]struct {
		schedule string
		want     time.Duration
	}{
		"every 6 hours":           {"0 */6 * * *", 6 * time.Hour},
		"@every 90m":              {"@every 90m", 90 * time.Minute},
		"@every 1s":               {"@every 1s", time.Second},
		"daily":                   {"@daily", 24 * time.Hour},
		"weekdays: the weekend":   {"0 2 * * 1-5", 72 * time.Hour},
		"twice a day, unevenly":   {"0 1,5 * * *", 20 * time.Hour},
		"weekly":                  {"@weekly", 7 * 24 * time.Hour},
		"monthly: the next month": {"0 0 1 * *", 31 * 24 * time.Hour},
		"never (February 30)":     {"0 0 30 2 *", 0},
		"in a time zone":          {"CRON_TZ=Europe/Berlin 0 3 * * *", 24 * time.Hour},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			sched, err := parser.Parse(tc.schedule)
			if err != nil {
				t.Fatal(err)
			}
			if got := SchedulePeriod(sched, from); got != tc.want {
				t.Errorf("SchedulePeriod(%q) = %v, want %v", tc.schedule, got, tc.want)
			}
		})
	}
}
