package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ give, want string }{
		{give: "redis://127.0.0.1:6379/0", want: "redis://127.0.0.1:6379/0"},
		{give: "redis://user:secret@127.0.0.1:6379/0", want: "redis://user:xxxxx@127.0.0.1:6379/0"},
		{give: "nats://a:secret@n1:4222,nats://a:secret@n2:4222", want: "nats://a:xxxxx@n1:4222,nats://a:xxxxx@n2:4222"},
		{give: "nats://secret@n1:4222", want: "nats://xxxxx@n1:4222"},
		{give: "redis://u:secret@[::1", want: "<unparsable url>"},
		{give: "", want: ""},
		{give: "redis://:secret@s1:26379/0?addr=s2:26379&username=kpi&password=secret&master_name=m",
			want: "redis://:xxxxx@s1:26379/0?addr=s2:26379&username=kpi&password=xxxxx&master_name=m"},
		{give: "redis://s1:26379?Password=secret", want: "redis://s1:26379?Password=xxxxx"},
		{give: "127.0.0.1:8080", want: "127.0.0.1:8080"},
	}
	for _, tt := range tests {
		if got := URL(tt.give); got != tt.want || strings.Contains(got, "secret") {
			t.Errorf("URL(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}
