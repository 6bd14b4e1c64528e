package export

import (
	"fmt"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/schema"
)

// Item 15: every directory has its own reconcile day, so over 28 days the
// busiest day reconciles at most 1.5 times the mean, and no directory goes
// longer than the reconcile period without a full walk.
func TestReconcileDaysAreSpread(t *testing.T) {
	const dirs, days = 500, 28
	every := 7 * 24 * time.Hour
	last := make([]time.Time, dirs)
	day0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range last {
		last[i] = day0 // every directory walked in full on day 0
	}
	perDay := make([]int, days+1)
	for d := 1; d <= days; d++ {
		date := day0.AddDate(0, 0, d)
		for i := range dirs {
			id := fmt.Sprintf("directory_01SPREAD%018d", i)
			if due(id, last[i].Format(schema.PartitionFormat), date.Format(schema.PartitionFormat), every) {
				perDay[d]++
				last[i] = date
			}
			if gap := date.Sub(last[i]); gap >= every {
				t.Fatalf("%s: no full walk for %s", id, gap)
			}
		}
	}
	total, most := 0, 0
	for _, n := range perDay[1:] {
		total += n
		most = max(most, n)
	}
	mean := float64(total) / days
	t.Logf("reconciles per day over %d days: %v (mean %.1f, max %d, %.2fx)", days, perDay[1:], mean, most, float64(most)/mean)
	if float64(most) > 1.5*mean {
		t.Errorf("the busiest day reconciles %d directories, %.2fx the mean %.1f (want <= 1.5x)", most, float64(most)/mean, mean)
	}
}
