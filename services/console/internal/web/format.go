package web

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// duration writes seconds as the two largest units ("3h 05m", "2d 4h", "45s"); "–" for none.
func duration(sec float64, count int64) string {
	if count == 0 || math.IsNaN(sec) || sec < 0 {
		return "–"
	}
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// percent writes a 0..1 share as a percentage; "–" when there is nothing to share.
func percent(share float64, den int64) string {
	if den == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f %%", 100*share)
}

// score writes a QA score (a percentage from 0 to 100) of n reviews; "–" for none.
func score(v float64, n int64) string {
	if n == 0 {
		return "–"
	}
	return scoreText(v)
}

// scoreText writes a QA score with one decimal: scores are kept to hundredths, but their
// percentiles are exact only to 0.05, and a mean beside them reads best alike.
func scoreText(v float64) string { return fmt.Sprintf("%.1f %%", v) }

func slaFirstResponse(k *tpv1.Kpis) string {
	return percent(k.GetSlaFirstResponseCompliance(), k.GetSlaFirstResponseMet()+k.GetSlaFirstResponseBreached())
}

func decimal(v float64, den int64) string {
	if den == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func stamp(ts *timestamppb.Timestamp) string {
	if ts == nil || (ts.GetSeconds() == 0 && ts.GetNanos() == 0) {
		return "–"
	}
	return ts.AsTime().UTC().Format("2006-01-02 15:04:05 UTC")
}

// link is path with query, both built from values so that any id (slashes, quotes, unicode) is
// carried exactly and escaped once.
func link(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// enumWord is a proto enum name without its prefix, lower case: ESCALATION_STATE_OPEN → open.
func enumWord(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}
