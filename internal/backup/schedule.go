package backup

import "time"

// periodWindow is how far SchedulePeriod looks ahead: a week and a day, so
// that a weekly pattern (weekdays only, say) is seen whole.
const periodWindow = 8 * 24 * time.Hour

// maxPeriodTimes bounds the times SchedulePeriod visits (an @every 1s
// schedule has 691,200 in its window; its interval is clear long before).
const maxPeriodTimes = 20000

// SchedulePeriod is the time between consecutive backups of a schedule (a
// robfig/cron Schedule), as kvstore_backup_schedule_period_seconds exports
// it for the alert rule (config/prometheus/backup-rules.yaml): the longest
// interval between consecutive times in the eight days after the first
// time after from, so that an irregular schedule (0 2 * * 1-5) gives its
// longest gap (the weekend's) and the alert does not fire on a quiet
// weekend. It is 0 when sched names no time, or a single one, after from.
func SchedulePeriod(sched interface{ Next(time.Time) time.Time }, from time.Time) time.Duration {
	prev := sched.Next(from)
	if prev.IsZero() {
		return 0
	}
	end := prev.Add(periodWindow)
	var longest time.Duration
	for range maxPeriodTimes {
		next := sched.Next(prev)
		if next.IsZero() {
			break
		}
		longest = max(longest, next.Sub(prev))
		if next.After(end) {
			break
		}
		prev = next
	}
	return longest
}
