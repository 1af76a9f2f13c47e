package main

import (
	"fmt"
	"strings"
)

// serviceSpec is one Ticketpulse binary as the dev stack runs it, on the addresses of DESIGN.md §1.
type serviceSpec struct {
	name     string
	httpAddr string
	grpcAddr string // empty when the service has no gRPC server
	// adminAddr serves /metrics and /debug/pprof/ (the services' own default).
	adminAddr string
	colour    string // ANSI SGR parameters for its log prefix
}

// allServices is in start order: ingest declares the streams the others wait for.
var allServices = []serviceSpec{
	{name: "ingest", httpAddr: "127.0.0.1:8080", adminAddr: "127.0.0.1:9289", colour: "36"},
	{name: "kpi", httpAddr: "127.0.0.1:9190", grpcAddr: "127.0.0.1:9090", adminAddr: "127.0.0.1:9290", colour: "32"},
	{name: "escalation", httpAddr: "127.0.0.1:9191", grpcAddr: "127.0.0.1:9091", adminAddr: "127.0.0.1:9291", colour: "33"},
	{name: "notify", httpAddr: "127.0.0.1:9192", grpcAddr: "127.0.0.1:9092", adminAddr: "127.0.0.1:9292", colour: "35"},
	{name: "console", httpAddr: "127.0.0.1:8088", adminAddr: "127.0.0.1:8288", colour: "34"},
}

func serviceNames() []string {
	names := make([]string, len(allServices))
	for i, s := range allServices {
		names[i] = s.name
	}
	return names
}

// parseServices turns "kpi, ingest" into the named services in start order, without duplicates.
// "all" names every service.
func parseServices(list string) ([]serviceSpec, error) {
	want := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
			continue
		case name == "all":
			for _, s := range allServices {
				want[s.name] = true
			}
		case !known(name):
			return nil, fmt.Errorf("unknown service %q: want a comma-separated list of %s, or all", name, strings.Join(serviceNames(), ", "))
		default:
			want[name] = true
		}
	}
	var out []serviceSpec
	for _, s := range allServices {
		if want[s.name] {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no service named in %q: want a comma-separated list of %s, or all", list, strings.Join(serviceNames(), ", "))
	}
	return out, nil
}

func known(name string) bool {
	for _, s := range allServices {
		if s.name == name {
			return true
		}
	}
	return false
}
