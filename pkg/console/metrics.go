package console

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// deliveredMetric is the worker counter the deliveries chart reads, with
// outcome="success".
const deliveredMetric = "botrelay_delivery_attempts_total"

// Sample is the workers' success counters at one moment: per scraped
// worker address, per robot.
type Sample struct {
	At    time.Time
	Count map[string]map[string]float64 // target → robot → counter
}

// scrape reads every worker's /metrics. A host is resolved to all its
// addresses; one unreachable worker is skipped (and reported) but the
// others count.
func (s *Server) scrape(ctx context.Context) (Sample, error) {
	smp := Sample{At: s.now(), Count: map[string]map[string]float64{}}
	var errs []error
	for _, raw := range s.cfg.WorkerMetrics {
		u, err := url.Parse(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("worker metrics URL: %w", err))
			continue
		}
		addrs, err := net.DefaultResolver.LookupHost(ctx, u.Hostname())
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve %s: %w", u.Hostname(), err))
			continue
		}
		for _, a := range addrs {
			tu := *u
			tu.Host = net.JoinHostPort(a, u.Port())
			if u.Port() == "" {
				tu.Host = a
			}
			counts, err := s.scrapeOne(ctx, tu.String())
			if err != nil {
				errs = append(errs, err)
				continue
			}
			smp.Count[tu.Host] = counts
		}
	}
	return smp, errors.Join(errs...)
}

// scrapeOne reads the success counters of one worker.
func (s *Server) scrapeOne(ctx context.Context, target string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", target, err)
	}
	req.Header.Set("Accept", "text/plain")
	if s.cfg.MetricsToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.MetricsToken)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics %s: HTTP %d", target, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", target, err)
	}
	out := map[string]float64{}
	if f := fams[deliveredMetric]; f != nil {
		for _, m := range f.GetMetric() {
			var robot, outcome string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "robot":
					robot = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			if outcome == "success" && m.GetCounter() != nil {
				out[robot] += m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

// Point is one bar of a chart: the count in [At, At+Step).
type Point struct {
	At    time.Time `json:"at"`
	Count float64   `json:"count"`
}

// deliveries returns the deliveries between consecutive samples, for robot
// ("" all). A counter that went down (a worker restarted) counts from 0.
func deliveries(samples []Sample, robot string) []Point {
	var out []Point
	for i := 1; i < len(samples); i++ {
		prev, cur := samples[i-1], samples[i]
		var n float64
		for target, counts := range cur.Count {
			for r, v := range counts {
				if robot != "" && r != robot {
					continue
				}
				before := prev.Count[target][r]
				if v >= before {
					n += v - before
				} else {
					n += v
				}
			}
		}
		out = append(out, Point{At: prev.At, Count: n})
	}
	return out
}

// deadSeries buckets the dead letters of robot ("" all) written in the
// last span into n bars.
func deadSeries(dead []deadEntry, robot string, now time.Time, span time.Duration, n int) []Point {
	step := span / time.Duration(n)
	start := now.Add(-span).Truncate(step).Add(step)
	out := make([]Point, n)
	for i := range out {
		out[i].At = start.Add(time.Duration(i) * step)
	}
	for _, d := range dead {
		if robot != "" && d.Robot != robot || d.At.Before(start) {
			continue
		}
		i := int(d.At.Sub(start) / step)
		if i < n {
			out[i].Count++
		}
	}
	return out
}
