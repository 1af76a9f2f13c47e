package kubernetes

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// natsPermissions is one user's permissions: direction (publish, subscribe) -> allow or deny ->
// subjects in their order.
type natsPermissions map[string]map[string][]string

var (
	natsBlock = regexp.MustCompile(`(?ms)^([A-Z]+)_PERMISSIONS = \{\n(.*?)^\}`)
	natsToken = regexp.MustCompile(`(publish|subscribe|allow|deny)\s*:|"([^"]*)"`)
)

// parseNATSConf reads the <USER>_PERMISSIONS blocks of deploy/nats.conf, the compose stack's
// server configuration: the one the e2e test runs the services against.
func parseNATSConf(conf string) map[string]natsPermissions {
	out := map[string]natsPermissions{}
	for _, b := range natsBlock.FindAllStringSubmatch(conf, -1) {
		var lines []string
		for _, l := range strings.Split(b[2], "\n") {
			if i := strings.Index(l, "#"); i >= 0 {
				l = l[:i]
			}
			lines = append(lines, l)
		}
		perms := natsPermissions{}
		dir, kind := "", ""
		for _, m := range natsToken.FindAllStringSubmatch(strings.Join(lines, "\n"), -1) {
			switch m[1] {
			case "publish", "subscribe":
				dir = m[1]
			case "allow", "deny":
				kind = m[1]
			default:
				if perms[dir] == nil {
					perms[dir] = map[string][]string{}
				}
				perms[dir][kind] = append(perms[dir][kind], m[2])
			}
		}
		out[strings.ToLower(b[1])] = perms
	}
	return out
}

type natsValues struct {
	Config struct {
		Merge struct {
			Authorization struct {
				Users []struct {
					User        string          `json:"user"`
					Password    string          `json:"password"`
					Permissions natsPermissions `json:"permissions"`
				} `json:"users"`
			} `json:"authorization"`
		} `json:"merge"`
	} `json:"config"`
	Container struct {
		Env map[string]any `json:"env"`
	} `json:"container"`
}

// compareNATS lists where the chart's users differ from deploy/nats.conf's.
func compareNATS(conf map[string]natsPermissions, values *natsValues) []string {
	var errs []string
	seen := map[string]bool{}
	for _, u := range values.Config.Merge.Authorization.Users {
		seen[u.User] = true
		want, ok := conf[u.User]
		if !ok {
			errs = append(errs, fmt.Sprintf("user %s is not in deploy/nats.conf", u.User))
			continue
		}
		variable := "TICKETPULSE_" + strings.ToUpper(u.User) + "_NATS_PASSWORD"
		if u.Password != "<< $"+variable+" >>" {
			errs = append(errs, fmt.Sprintf("user %s: password %q, want the variable %s", u.User, u.Password, variable))
		}
		env, _ := values.Container.Env[variable].(map[string]any)
		ref := fmt.Sprint(env["valueFrom"])
		if !strings.Contains(ref, "name:ticketpulse-nats-passwords") || !strings.Contains(ref, "key:"+u.User) {
			errs = append(errs, fmt.Sprintf("user %s: container.env %s is not key %s of the Secret ticketpulse-nats-passwords (%s)", u.User, variable, u.User, ref))
		}
		for _, dir := range []string{"publish", "subscribe"} {
			for _, kind := range []string{"allow", "deny"} {
				if got, want := u.Permissions[dir][kind], want[dir][kind]; !slices.Equal(got, want) {
					errs = append(errs, fmt.Sprintf("user %s %s %s: %q, deploy/nats.conf has %q", u.User, dir, kind, got, want))
				}
			}
		}
	}
	for user := range conf {
		if !seen[user] {
			errs = append(errs, fmt.Sprintf("deploy/nats.conf's user %s is missing", user))
		}
	}
	return errs
}

func readNATS(t *testing.T) (map[string]natsPermissions, *natsValues) {
	t.Helper()
	conf, err := os.ReadFile("../nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	users := parseNATSConf(string(conf))
	if len(users) != len(services) {
		t.Fatalf("deploy/nats.conf: found the permissions of %d users, want %d (one per service): has its layout changed?", len(users), len(services))
	}
	b, err := os.ReadFile("helm/nats-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v := &natsValues{}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("helm/nats-values.yaml: %v", err)
	}
	return users, v
}

func TestNATSValuesMatchNATSConf(t *testing.T) {
	conf, values := readNATS(t)
	for _, e := range compareNATS(conf, values) {
		t.Error("helm/nats-values.yaml: " + e)
	}
	for _, breakIt := range []func(v *natsValues){
		func(v *natsValues) { // a subject dropped
			p := v.Config.Merge.Authorization.Users[1].Permissions["publish"]
			p["allow"] = p["allow"][1:]
		},
		func(v *natsValues) { // a deny list lost
			delete(v.Config.Merge.Authorization.Users[2].Permissions["publish"], "deny")
		},
		func(v *natsValues) { // a user missing
			v.Config.Merge.Authorization.Users = v.Config.Merge.Authorization.Users[:4]
		},
		func(v *natsValues) { // a password written in
			v.Config.Merge.Authorization.Users[0].Password = "secret"
		},
	} {
		_, v := readNATS(t)
		breakIt(v)
		if len(compareNATS(conf, v)) == 0 {
			t.Error("a broken copy of helm/nats-values.yaml still matches deploy/nats.conf")
		}
	}
}

// redisDirectives are deploy/redis.conf's settings, but the network ones the chart sets itself.
func redisDirectives(conf string) []string {
	var out []string
	for _, l := range strings.Split(conf, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		switch strings.Fields(l)[0] {
		case "bind", "port", "protected-mode":
			continue
		}
		out = append(out, l)
	}
	return out
}

func missingRedisSettings(conf, values string) []string {
	var v struct {
		CommonConfiguration string `json:"commonConfiguration"`
	}
	if err := yaml.Unmarshal([]byte(values), &v); err != nil {
		return []string{err.Error()}
	}
	have := map[string]bool{}
	for _, l := range strings.Split(v.CommonConfiguration, "\n") {
		have[strings.TrimSpace(l)] = true
	}
	var missing []string
	for _, d := range redisDirectives(conf) {
		if !have[d] {
			missing = append(missing, d)
		}
	}
	return missing
}

func TestRedisValuesHaveRedisConf(t *testing.T) {
	conf, err := os.ReadFile("../redis.conf")
	if err != nil {
		t.Fatal(err)
	}
	values, err := os.ReadFile("helm/redis-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d := redisDirectives(string(conf)); !slices.Contains(d, "hash-max-listpack-entries 128") {
		t.Fatalf("deploy/redis.conf's settings %q lack hash-max-listpack-entries 128", d)
	}
	if m := missingRedisSettings(string(conf), string(values)); len(m) > 0 {
		t.Errorf("helm/redis-values.yaml's commonConfiguration lacks deploy/redis.conf's %q", m)
	}
	broken := strings.Replace(string(values), "hash-max-listpack-entries 128", "hash-max-listpack-entries 512", 1)
	if len(missingRedisSettings(string(conf), broken)) == 0 {
		t.Error("a commonConfiguration with hash-max-listpack-entries 512 passed")
	}
}

// TestChartSecretsAreTheRequiredOnes: the Secrets the charts read are the ones
// overlays/production/required.yaml tells the operator to create.
func TestChartSecretsAreTheRequiredOnes(t *testing.T) {
	req := readRequired(t)
	var values string
	for _, f := range []string{"helm/nats-values.yaml", "helm/redis-values.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		values += string(b)
	}
	named := regexp.MustCompile(`(?:name|secretName|existingSecret): (ticketpulse-[a-z-]+)`)
	used := map[string]bool{}
	for _, m := range named.FindAllStringSubmatch(values, -1) {
		used[m[1]] = true
		if _, ok := req.Charts[m[1]]; !ok {
			t.Errorf("the charts' values read the Secret %s, which required.yaml does not list under charts", m[1])
		}
	}
	for name := range req.Charts {
		if !used[name] {
			t.Errorf("required.yaml lists %s under charts, which no values file reads", name)
		}
	}
}
