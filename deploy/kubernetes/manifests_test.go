// Package kubernetes holds no code: its tests build every kustomize overlay of this directory and
// check what would be applied, as the API server would decode it, and that its parts refer to
// each other correctly.
package kubernetes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/tenants"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// overlays are the directories a user applies; each must build and pass every check.
var overlays = []struct {
	dir        string
	production bool // credentials and configuration must exist beforehand (required.yaml)
}{
	{dir: "overlays/dev"},
	{dir: "overlays/production", production: true},
	{dir: "overlays/production-prometheus-adapter", production: true},
}

// services are the five binaries and their commands under services/.
var services = []string{"ingest", "kpi", "escalation", "notify", "console"}

// chartPods are the labels the NATS and Redis charts (helm/) give their pods, which these
// manifests do not render but the NetworkPolicies must select.
var chartPods = map[string]labels.Set{
	"nats":  {"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": "nats", "app.kubernetes.io/component": "nats"},
	"redis": {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": "redis", "app.kubernetes.io/component": "node"},
}

// runtimeEnv are variables the Go runtime of every binary reads, besides its flags' own.
var runtimeEnv = []string{"GOMEMLIMIT", "GOGC", "GOMAXPROCS"}

// manifests is one overlay's output, decoded.
type manifests struct {
	deployments   []*appsv1.Deployment
	services      []*corev1.Service
	pdbs          []*policyv1.PodDisruptionBudget
	policies      []*networkingv1.NetworkPolicy
	secrets       []*corev1.Secret
	configMaps    []*corev1.ConfigMap
	hpas          []*autoscalingv2.HorizontalPodAutoscaler
	scaledObjects []*scaledObject
	namespaces    []*corev1.Namespace
}

// scaledObject is the part of KEDA's ScaledObject (keda.sh/v1alpha1) these manifests use;
// decoding into it strictly catches a misspelt field, as KEDA's own validation would.
type scaledObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval int32 `json:"pollingInterval"`
		CooldownPeriod  int32 `json:"cooldownPeriod"`
		MinReplicaCount int32 `json:"minReplicaCount"`
		MaxReplicaCount int32 `json:"maxReplicaCount"`
		Advanced        struct {
			HorizontalPodAutoscalerConfig struct {
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior"`
			} `json:"horizontalPodAutoscalerConfig"`
		} `json:"advanced"`
		Triggers []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// required is overlays/production/required.yaml: name -> keys.
type required struct {
	Secrets    map[string][]string `json:"secrets"`
	ConfigMaps map[string][]string `json:"configMaps"`
	Charts     map[string][]string `json:"charts"`
}

var decoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme,
		networkingv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
}()

// build runs kustomize on dir as `kubectl apply -k` would.
func build(t *testing.T, dir string) []byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return out
}

// decode splits a multi-document stream and decodes each object strictly: an unknown or
// repeated field, or a kind this test does not know, is an error.
func decode(stream []byte) (*manifests, error) {
	m := &manifests{}
	for i, doc := range bytes.Split(stream, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if head.APIVersion == "keda.sh/v1alpha1" && head.Kind == "ScaledObject" {
			so := &scaledObject{}
			if err := yaml.UnmarshalStrict(doc, so); err != nil {
				return nil, fmt.Errorf("document %d, %s: %w", i, head.Kind, err)
			}
			m.scaledObjects = append(m.scaledObjects, so)
			continue
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d, %s %s: %w", i, head.APIVersion, head.Kind, err)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			m.deployments = append(m.deployments, o)
		case *corev1.Service:
			m.services = append(m.services, o)
		case *policyv1.PodDisruptionBudget:
			m.pdbs = append(m.pdbs, o)
		case *networkingv1.NetworkPolicy:
			m.policies = append(m.policies, o)
		case *corev1.Secret:
			m.secrets = append(m.secrets, o)
		case *corev1.ConfigMap:
			m.configMaps = append(m.configMaps, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.hpas = append(m.hpas, o)
		case *corev1.Namespace:
			m.namespaces = append(m.namespaces, o)
		default:
			return nil, fmt.Errorf("document %d: %T is not checked by this test", i, obj)
		}
	}
	return m, nil
}

func (m *manifests) deployment(name string) *appsv1.Deployment {
	for _, d := range m.deployments {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// podLabels are the label sets of every pod the overlay and the charts run.
func (m *manifests) podLabels() map[string]labels.Set {
	out := map[string]labels.Set{}
	for _, d := range m.deployments {
		out["Deployment "+d.Name] = labels.Set(d.Spec.Template.Labels)
	}
	for name, l := range chartPods {
		out["chart "+name] = l
	}
	return out
}

// overlayEnv is what a check may need beyond the manifests.
type overlayEnv struct {
	production bool
	required   *required
	accepted   map[string]map[string]bool // service -> environment variables its -h names
}

// check returns every problem it finds, each naming the object.
type check func(m *manifests, env *overlayEnv) []string

var checks = []struct {
	name string
	fn   check
}{
	{"every service has a Deployment and a PodDisruptionBudget", checkServicesPresent},
	{"Service selectors select a Deployment's pods", checkServiceSelectors},
	{"Service targetPorts are container ports", checkServicePorts},
	{"probes: /readyz and /healthz on the HTTP port", checkProbes},
	{"listen addresses are the container ports", checkListenPorts},
	{"the console calls Services that exist", checkUpstreams},
	{"pods are locked down", checkSecurity},
	{"containers have requests and limits", checkResources},
	{"images are pinned by tag", checkImages},
	{"env vars are ones the service accepts", checkEnvAccepted},
	{"referenced Secrets and ConfigMaps exist or are required", checkReferences},
	{"NetworkPolicies select pods", checkPolicySelectors},
	{"NetworkPolicy named ports exist", checkPolicyPorts},
	{"PodDisruptionBudgets select a Deployment", checkPDBs},
	{"kpi is autoscaled on its consumer lag", checkAutoscaler},
}

func checkServicesPresent(m *manifests, _ *overlayEnv) []string {
	var errs []string
	for _, s := range services {
		if m.deployment(s) == nil {
			errs = append(errs, "no Deployment "+s)
		}
		found := false
		for _, p := range m.pdbs {
			found = found || p.Name == s
		}
		if !found {
			errs = append(errs, "no PodDisruptionBudget "+s)
		}
	}
	return errs
}

func checkServiceSelectors(m *manifests, _ *overlayEnv) []string {
	var errs []string
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 {
			errs = append(errs, fmt.Sprintf("Service %s: no selector", s.Name))
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		n := 0
		for _, d := range m.deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
			}
		}
		if n != 1 {
			errs = append(errs, fmt.Sprintf("Service %s: selector %v matches the pods of %d Deployments, want 1", s.Name, s.Spec.Selector, n))
		}
	}
	return errs
}

// containerPort finds p among the ports of the containers of the pods sel selects.
func containerPort(m *manifests, sel labels.Selector, p intstr.IntOrString) bool {
	for _, d := range m.deployments {
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, cp := range c.Ports {
				if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
					return true
				}
			}
		}
	}
	return false
}

func checkServicePorts(m *manifests, _ *overlayEnv) []string {
	var errs []string
	for _, s := range m.services {
		sel := labels.SelectorFromSet(s.Spec.Selector)
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			if !containerPort(m, sel, target) {
				errs = append(errs, fmt.Sprintf("Service %s port %s: targetPort %s is no container port of its pods", s.Name, p.Name, target.String()))
			}
		}
	}
	return errs
}

func checkProbes(m *manifests, _ *overlayEnv) []string {
	var errs []string
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			httpPort := ""
			for _, p := range c.Ports {
				if p.Name == "http" {
					httpPort = p.Name
				}
			}
			if httpPort == "" {
				errs = append(errs, fmt.Sprintf("Deployment %s container %s: no port named http", d.Name, c.Name))
				continue
			}
			for _, pr := range []struct {
				kind, path string
				probe      *corev1.Probe
			}{
				{"readinessProbe", "/readyz", c.ReadinessProbe},
				{"livenessProbe", "/healthz", c.LivenessProbe},
			} {
				switch {
				case pr.probe == nil || pr.probe.HTTPGet == nil:
					errs = append(errs, fmt.Sprintf("Deployment %s container %s: no HTTP %s", d.Name, c.Name, pr.kind))
				case pr.probe.HTTPGet.Path != pr.path:
					errs = append(errs, fmt.Sprintf("Deployment %s container %s: %s path %q, want %q", d.Name, c.Name, pr.kind, pr.probe.HTTPGet.Path, pr.path))
				case pr.probe.HTTPGet.Port.String() != httpPort:
					errs = append(errs, fmt.Sprintf("Deployment %s container %s: %s on port %s, want the HTTP port %q", d.Name, c.Name, pr.kind, pr.probe.HTTPGet.Port.String(), httpPort))
				}
			}
		}
	}
	return errs
}

// listenEnv names the variable that sets the address each named container port serves.
var listenEnv = map[string]string{
	"http":  "TICKETPULSE_HTTP_ADDR",
	"grpc":  "TICKETPULSE_GRPC_ADDR",
	"admin": "TICKETPULSE_ADMIN_ADDR",
}

// checkListenPorts: a service listens where its variables say, on every interface (a loopback
// address is unreachable from the kubelet and the Service), and that is the container port of
// the same name; Prometheus's annotation names the admin port.
func checkListenPorts(m *manifests, _ *overlayEnv) []string {
	var errs []string
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			for _, p := range c.Ports {
				variable, ok := listenEnv[p.Name]
				if !ok {
					errs = append(errs, fmt.Sprintf("Deployment %s container %s: port %q is none of %v", d.Name, c.Name, p.Name, slices.Sorted(maps.Keys(listenEnv))))
					continue
				}
				if want := fmt.Sprintf("0.0.0.0:%d", p.ContainerPort); env[variable] != want {
					errs = append(errs, fmt.Sprintf("Deployment %s container %s: %s=%q, want %q for port %s", d.Name, c.Name, variable, env[variable], want, p.Name))
				}
				if p.Name == "admin" && d.Spec.Template.Annotations["prometheus.io/port"] != fmt.Sprint(p.ContainerPort) {
					errs = append(errs, fmt.Sprintf("Deployment %s: prometheus.io/port %q is not the admin port %d", d.Name, d.Spec.Template.Annotations["prometheus.io/port"], p.ContainerPort))
				}
			}
		}
	}
	return errs
}

// upstreamEnv are the console's gRPC addresses and the service each must reach.
var upstreamEnv = map[string]string{
	"TICKETPULSE_KPI_ADDR":        "kpi",
	"TICKETPULSE_ESCALATION_ADDR": "escalation",
	"TICKETPULSE_NOTIFY_ADDR":     "notify",
}

// checkUpstreams: each of the console's upstream addresses is a Service's name and port that
// leads to that service's gRPC container port.
func checkUpstreams(m *manifests, _ *overlayEnv) []string {
	console := m.deployment("console")
	if console == nil {
		return []string{"no Deployment console"}
	}
	env := map[string]string{}
	for _, e := range console.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	var errs []string
	for _, variable := range slices.Sorted(maps.Keys(upstreamEnv)) {
		target := upstreamEnv[variable]
		host, port, err := net.SplitHostPort(env[variable])
		if err != nil {
			errs = append(errs, fmt.Sprintf("console %s=%q: %v", variable, env[variable], err))
			continue
		}
		found := false
		for _, s := range m.services {
			if s.Name != host {
				continue
			}
			for _, p := range s.Spec.Ports {
				if fmt.Sprint(p.Port) != port {
					continue
				}
				sel := labels.SelectorFromSet(s.Spec.Selector)
				d := m.deployment(target)
				found = d != nil && sel.Matches(labels.Set(d.Spec.Template.Labels)) && p.TargetPort.String() == "grpc"
			}
		}
		if !found {
			errs = append(errs, fmt.Sprintf("console %s=%q is no Service port leading to %s's gRPC port", variable, env[variable], target))
		}
	}
	return errs
}

func checkSecurity(m *manifests, _ *overlayEnv) []string {
	var errs []string
	for _, d := range m.deployments {
		ps := d.Spec.Template.Spec
		bad := func(what string) { errs = append(errs, fmt.Sprintf("Deployment %s: %s", d.Name, what)) }
		if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
			bad("pod securityContext.runAsNonRoot is not true")
		}
		if ps.SecurityContext == nil || ps.SecurityContext.SeccompProfile == nil || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			bad("pod seccompProfile is not RuntimeDefault")
		}
		if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
			bad("the service account token is mounted (no service calls the Kubernetes API)")
		}
		for _, c := range ps.Containers {
			sc := c.SecurityContext
			switch {
			case sc == nil:
				bad("container " + c.Name + ": no securityContext")
				continue
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				bad("container " + c.Name + ": root filesystem is writable")
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				bad("container " + c.Name + ": allowPrivilegeEscalation is not false")
			case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
				bad("container " + c.Name + ": capabilities are not all dropped")
			case sc.Privileged != nil && *sc.Privileged:
				bad("container " + c.Name + ": privileged")
			}
		}
	}
	return errs
}

func checkResources(m *manifests, _ *overlayEnv) []string {
	var errs []string
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, okReq := c.Resources.Requests[r]
				lim, okLim := c.Resources.Limits[r]
				if !okReq || !okLim {
					errs = append(errs, fmt.Sprintf("Deployment %s container %s: %s needs a request and a limit", d.Name, c.Name, r))
					continue
				}
				if req.Cmp(lim) > 0 {
					errs = append(errs, fmt.Sprintf("Deployment %s container %s: %s request %s above its limit %s", d.Name, c.Name, r, req.String(), lim.String()))
				}
			}
		}
	}
	return errs
}

// pinned is an image reference with a tag other than latest, or a digest.
var pinned = regexp.MustCompile(`^[a-z0-9][a-z0-9./_-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$`)

func checkImages(m *manifests, _ *overlayEnv) []string {
	var errs []string
	for _, d := range m.deployments {
		for _, c := range append(slices.Clone(d.Spec.Template.Spec.InitContainers), d.Spec.Template.Spec.Containers...) {
			ref := c.Image
			name := ref
			if at := strings.Index(name, "@"); at >= 0 {
				name = name[:at]
			}
			tag := ""
			if colon := strings.LastIndex(name, ":"); colon > strings.LastIndex(name, "/") {
				tag = name[colon+1:]
			}
			if !pinned.MatchString(ref) || ((tag == "" || tag == "latest") && !strings.Contains(ref, "@sha256:")) {
				errs = append(errs, fmt.Sprintf("Deployment %s container %s: image %q is not pinned by a tag (or digest)", d.Name, c.Name, ref))
			}
		}
	}
	return errs
}

func checkEnvAccepted(m *manifests, env *overlayEnv) []string {
	var errs []string
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			accepted, ok := env.accepted[c.Name]
			if !ok {
				errs = append(errs, fmt.Sprintf("Deployment %s container %s: not one of the services %v", d.Name, c.Name, services))
				continue
			}
			if len(c.EnvFrom) > 0 {
				errs = append(errs, fmt.Sprintf("Deployment %s container %s: envFrom sets variables this test cannot check", d.Name, c.Name))
			}
			for _, e := range c.Env {
				if !accepted[e.Name] && !slices.Contains(runtimeEnv, e.Name) {
					errs = append(errs, fmt.Sprintf("Deployment %s container %s: %s is not a variable %s -h names", d.Name, c.Name, e.Name, c.Name))
				}
			}
		}
	}
	return errs
}

// refs are the Secret and ConfigMap names (and keys) a Deployment's pods read.
func refs(d *appsv1.Deployment) (secrets, configMaps map[string][]string) {
	secrets, configMaps = map[string][]string{}, map[string][]string{}
	ps := d.Spec.Template.Spec
	for _, v := range ps.Volumes {
		if v.Secret != nil {
			secrets[v.Secret.SecretName] = append(secrets[v.Secret.SecretName], keysOf(v.Secret.Items)...)
		}
		if v.ConfigMap != nil {
			configMaps[v.ConfigMap.Name] = append(configMaps[v.ConfigMap.Name], keysOf(v.ConfigMap.Items)...)
		}
	}
	for _, c := range append(slices.Clone(ps.InitContainers), ps.Containers...) {
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				secrets[r.Name] = append(secrets[r.Name], r.Key)
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				configMaps[r.Name] = append(configMaps[r.Name], r.Key)
			}
		}
	}
	return secrets, configMaps
}

func keysOf(items []corev1.KeyToPath) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Key)
	}
	return out
}

func checkReferences(m *manifests, env *overlayEnv) []string {
	var errs []string
	usedSecrets, usedConfigMaps := map[string]bool{}, map[string]bool{}
	for _, d := range m.deployments {
		secrets, configMaps := refs(d)
		for name, keys := range secrets {
			usedSecrets[name] = true
			errs = append(errs, resolve(m, env, d.Name, "Secret", name, keys)...)
		}
		for name, keys := range configMaps {
			usedConfigMaps[name] = true
			errs = append(errs, resolve(m, env, d.Name, "ConfigMap", name, keys)...)
		}
	}
	if env.production {
		// The list is the operator's checklist: nothing on it may be stale.
		for name := range env.required.Secrets {
			if !usedSecrets[name] {
				errs = append(errs, fmt.Sprintf("required.yaml lists Secret %s, which no Deployment reads", name))
			}
		}
		for name := range env.required.ConfigMaps {
			if !usedConfigMaps[name] {
				errs = append(errs, fmt.Sprintf("required.yaml lists ConfigMap %s, which no Deployment reads", name))
			}
		}
	}
	return errs
}

// resolve finds a referenced Secret or ConfigMap and its keys: among the generated objects,
// or in production on the required list.
func resolve(m *manifests, env *overlayEnv, user, kind, name string, keys []string) []string {
	var have map[string]bool
	if env.production {
		list, ok := env.required.Secrets[name]
		if kind == "ConfigMap" {
			list, ok = env.required.ConfigMaps[name]
		}
		if !ok {
			return []string{fmt.Sprintf("Deployment %s reads %s %s, which overlays/production neither makes nor lists in required.yaml", user, kind, name)}
		}
		have = map[string]bool{}
		for _, k := range list {
			have[k] = true
		}
	} else {
		have = objectKeys(m, kind, name)
		if have == nil {
			return []string{fmt.Sprintf("Deployment %s reads %s %s, which the overlay does not make", user, kind, name)}
		}
	}
	var errs []string
	for _, k := range keys {
		if !have[k] {
			errs = append(errs, fmt.Sprintf("Deployment %s reads key %q of %s %s, which it does not hold", user, k, kind, name))
		}
	}
	return errs
}

// objectKeys are the keys of a rendered Secret or ConfigMap, nil when there is none.
func objectKeys(m *manifests, kind, name string) map[string]bool {
	if kind == "Secret" {
		for _, s := range m.secrets {
			if s.Name == name {
				have := map[string]bool{}
				for k := range s.Data {
					have[k] = true
				}
				for k := range s.StringData {
					have[k] = true
				}
				return have
			}
		}
		return nil
	}
	for _, c := range m.configMaps {
		if c.Name == name {
			have := map[string]bool{}
			for k := range c.Data {
				have[k] = true
			}
			for k := range c.BinaryData {
				have[k] = true
			}
			return have
		}
	}
	return nil
}

// selects reports whether sel, a NetworkPolicy's or PDB's selector, picks any pod.
func selects(m *manifests, sel *metav1.LabelSelector) (bool, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	for _, l := range m.podLabels() {
		if s.Matches(l) {
			return true, nil
		}
	}
	return false, nil
}

func checkPolicySelectors(m *manifests, _ *overlayEnv) []string {
	var errs []string
	for _, p := range m.policies {
		sels := []*metav1.LabelSelector{&p.Spec.PodSelector}
		for _, r := range p.Spec.Ingress {
			for _, peer := range r.From {
				if peer.PodSelector != nil && peer.NamespaceSelector == nil {
					sels = append(sels, peer.PodSelector)
				}
			}
		}
		for _, r := range p.Spec.Egress {
			for _, peer := range r.To {
				if peer.PodSelector != nil && peer.NamespaceSelector == nil {
					sels = append(sels, peer.PodSelector)
				}
			}
		}
		// Peers in other namespaces (DNS, KEDA, Prometheus) are outside what the test sees.
		for i, sel := range sels {
			// Pods labelled as API clients are the operator's to add; the rest must exist.
			if i > 0 && sel.MatchLabels["ticketpulse.io/api-client"] == "true" {
				continue
			}
			ok, err := selects(m, sel)
			if err != nil {
				errs = append(errs, fmt.Sprintf("NetworkPolicy %s: %v", p.Name, err))
			} else if !ok {
				errs = append(errs, fmt.Sprintf("NetworkPolicy %s: selector %s selects no pod", p.Name, metav1.FormatLabelSelector(sel)))
			}
		}
	}
	return errs
}

// checkPolicyPorts: a named port in a NetworkPolicy opens nothing unless the pods it selects
// name a container port so.
func checkPolicyPorts(m *manifests, _ *overlayEnv) []string {
	var errs []string
	for _, p := range m.policies {
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err != nil {
			errs = append(errs, fmt.Sprintf("NetworkPolicy %s: %v", p.Name, err))
			continue
		}
		for _, r := range p.Spec.Ingress {
			for _, port := range r.Ports {
				if port.Port != nil && port.Port.Type == intstr.String && !containerPort(m, sel, *port.Port) {
					errs = append(errs, fmt.Sprintf("NetworkPolicy %s: port %q is no container port of the pods it selects", p.Name, port.Port.StrVal))
				}
			}
		}
	}
	return errs
}

func checkPDBs(m *manifests, _ *overlayEnv) []string {
	var errs []string
	for _, p := range m.pdbs {
		if p.Spec.Selector == nil {
			errs = append(errs, fmt.Sprintf("PodDisruptionBudget %s: no selector", p.Name))
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			errs = append(errs, fmt.Sprintf("PodDisruptionBudget %s: %v", p.Name, err))
			continue
		}
		n := 0
		for _, d := range m.deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
			}
		}
		if n != 1 {
			errs = append(errs, fmt.Sprintf("PodDisruptionBudget %s: selects the pods of %d Deployments, want 1", p.Name, n))
		}
	}
	return errs
}

func checkAutoscaler(m *manifests, env *overlayEnv) []string {
	targets := 0
	var errs []string
	for _, so := range m.scaledObjects {
		ref := so.Spec.ScaleTargetRef
		if ref.Name != "kpi" || (ref.Kind != "" && ref.Kind != "Deployment") || m.deployment(ref.Name) == nil {
			errs = append(errs, fmt.Sprintf("ScaledObject %s: targets %s %s, want Deployment kpi", so.Metadata.Name, ref.Kind, ref.Name))
		}
		for _, tr := range so.Spec.Triggers {
			if tr.Type != "nats-jetstream" || tr.Metadata["stream"] != "TICKETS" || tr.Metadata["consumer"] != "kpi" {
				errs = append(errs, fmt.Sprintf("ScaledObject %s: trigger %s on %s/%s, want nats-jetstream on TICKETS/kpi", so.Metadata.Name, tr.Type, tr.Metadata["stream"], tr.Metadata["consumer"]))
			}
		}
		if so.Spec.MinReplicaCount < 2 || so.Spec.MaxReplicaCount < so.Spec.MinReplicaCount {
			errs = append(errs, fmt.Sprintf("ScaledObject %s: replicas %d to %d", so.Metadata.Name, so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount))
		}
		targets++
	}
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != "kpi" || m.deployment(ref.Name) == nil {
			errs = append(errs, fmt.Sprintf("HorizontalPodAutoscaler %s: targets %s %s, want Deployment kpi", h.Name, ref.Kind, ref.Name))
		}
		for _, mt := range h.Spec.Metrics {
			if mt.External == nil || !strings.Contains(mt.External.Metric.Name, "consumer_pending") {
				errs = append(errs, fmt.Sprintf("HorizontalPodAutoscaler %s: scales on something else than kpi's consumer lag", h.Name))
			}
		}
		targets++
	}
	switch {
	case env.production && targets != 1:
		errs = append(errs, fmt.Sprintf("%d autoscalers for kpi, want exactly 1 (KEDA's or the HPA)", targets))
	case !env.production && targets != 0:
		errs = append(errs, fmt.Sprintf("%d autoscalers in dev, want none", targets))
	}
	return errs
}

var (
	acceptedOnce sync.Once
	acceptedEnv  map[string]map[string]bool
	acceptedErr  error
)

// envInHelp is how envflag's -h names a flag's variable: "  -nats-url  (env TICKETPULSE_NATS_URL, default ...)".
var envInHelp = regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)[,)]`)

// accepted builds the five services and reads the variables each one's -h names: the binaries
// themselves are the authority on what they read.
func accepted(t *testing.T) map[string]map[string]bool {
	t.Helper()
	acceptedOnce.Do(func() {
		bin, err := os.MkdirTemp("", "tp-manifests-")
		if err != nil {
			acceptedErr = err
			return
		}
		defer os.RemoveAll(bin)
		args := []string{"build", "-o", bin + string(filepath.Separator)}
		for _, s := range services {
			args = append(args, "./services/"+s+"/cmd/"+s)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			acceptedErr = fmt.Errorf("go build the services: %v\n%s", err, out)
			return
		}
		acceptedEnv = map[string]map[string]bool{}
		for _, s := range services {
			out, err := exec.Command(filepath.Join(bin, s), "-h").CombinedOutput()
			if err != nil {
				acceptedErr = fmt.Errorf("%s -h: %v\n%s", s, err, out)
				return
			}
			names := map[string]bool{}
			for _, m := range envInHelp.FindAllStringSubmatch(string(out), -1) {
				names[m[1]] = true
			}
			if len(names) < 10 {
				acceptedErr = fmt.Errorf("%s -h names only %d variables: has its format changed?\n%s", s, len(names), out)
				return
			}
			acceptedEnv[s] = names
		}
	})
	if acceptedErr != nil {
		t.Fatal(acceptedErr)
	}
	return acceptedEnv
}

func readRequired(t *testing.T) *required {
	t.Helper()
	b, err := os.ReadFile("overlays/production/required.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := &required{}
	if err := yaml.UnmarshalStrict(b, r); err != nil {
		t.Fatalf("required.yaml: %v", err)
	}
	return r
}

func runChecks(m *manifests, env *overlayEnv) map[string][]string {
	out := map[string][]string{}
	for _, c := range checks {
		if errs := c.fn(m, env); len(errs) > 0 {
			out[c.name] = errs
		}
	}
	return out
}

func TestOverlays(t *testing.T) {
	req := readRequired(t)
	acc := accepted(t)
	for _, o := range overlays {
		t.Run(o.dir, func(t *testing.T) {
			m, err := decode(build(t, o.dir))
			if err != nil {
				t.Fatal(err)
			}
			for name, errs := range runChecks(m, &overlayEnv{production: o.production, required: req, accepted: acc}) {
				for _, e := range errs {
					t.Errorf("%s: %s", name, e)
				}
			}
			if o.production {
				// Nothing secret is made by the production overlay itself.
				for _, s := range m.secrets {
					t.Errorf("overlays/production makes Secret %s: credentials must be created beforehand (required.yaml)", s.Name)
				}
			}
		})
	}
}

// TestChecksFail proves each check can fail: every case breaks one thing in the dev overlay's
// output and names the check that must report it.
func TestChecksFail(t *testing.T) {
	req := readRequired(t)
	acc := accepted(t)
	stream := build(t, "overlays/dev")
	prodStream := build(t, "overlays/production")
	fresh := func(t *testing.T, s []byte) *manifests {
		m, err := decode(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	container := func(m *manifests, name string) *corev1.Container {
		return &m.deployment(name).Spec.Template.Spec.Containers[0]
	}
	cases := []struct {
		name       string
		check      string
		production bool
		breakIt    func(m *manifests)
	}{
		{"a Deployment missing", "every service has a Deployment and a PodDisruptionBudget", false, func(m *manifests) {
			m.deployment("notify").Name = "notifier"
		}},
		{"Service selector with a typo", "Service selectors select a Deployment's pods", false, func(m *manifests) {
			m.services[0].Spec.Selector = map[string]string{"app.kubernetes.io/name": "kpii"}
		}},
		{"Service targetPort not on the pod", "Service targetPorts are container ports", false, func(m *manifests) {
			m.services[0].Spec.Ports[0].TargetPort = intstr.FromString("grcp")
		}},
		{"Service targetPort number not on the pod", "Service targetPorts are container ports", false, func(m *manifests) {
			m.services[0].Spec.Ports[0].TargetPort = intstr.FromInt32(9999)
		}},
		{"readiness on the wrong path", "probes: /readyz and /healthz on the HTTP port", false, func(m *manifests) {
			container(m, "kpi").ReadinessProbe.HTTPGet.Path = "/healthz"
		}},
		{"liveness on the admin port", "probes: /readyz and /healthz on the HTTP port", false, func(m *manifests) {
			container(m, "ingest").LivenessProbe.HTTPGet.Port = intstr.FromString("admin")
		}},
		{"no liveness probe", "probes: /readyz and /healthz on the HTTP port", false, func(m *manifests) {
			container(m, "console").LivenessProbe = nil
		}},
		{"HTTP address not the container port", "listen addresses are the container ports", false, func(m *manifests) {
			for i, e := range container(m, "kpi").Env {
				if e.Name == "TICKETPULSE_HTTP_ADDR" {
					container(m, "kpi").Env[i].Value = "0.0.0.0:8080"
				}
			}
		}},
		{"admin on loopback", "listen addresses are the container ports", false, func(m *manifests) {
			for i, e := range container(m, "notify").Env {
				if e.Name == "TICKETPULSE_ADMIN_ADDR" {
					container(m, "notify").Env[i].Value = "127.0.0.1:9292"
				}
			}
		}},
		{"scrape annotation on another port", "listen addresses are the container ports", false, func(m *manifests) {
			m.deployment("ingest").Spec.Template.Annotations["prometheus.io/port"] = "8080"
		}},
		{"console calling a Service that does not exist", "the console calls Services that exist", false, func(m *manifests) {
			for i, e := range container(m, "console").Env {
				if e.Name == "TICKETPULSE_KPI_ADDR" {
					container(m, "console").Env[i].Value = "kpi-grpc:9090"
				}
			}
		}},
		{"console calling escalation's port on notify", "the console calls Services that exist", false, func(m *manifests) {
			for i, e := range container(m, "console").Env {
				if e.Name == "TICKETPULSE_NOTIFY_ADDR" {
					container(m, "console").Env[i].Value = "notify:9091"
				}
			}
		}},
		{"writable root filesystem", "pods are locked down", false, func(m *manifests) {
			f := false
			container(m, "escalation").SecurityContext.ReadOnlyRootFilesystem = &f
		}},
		{"a capability kept", "pods are locked down", false, func(m *manifests) {
			container(m, "notify").SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"}
		}},
		{"root allowed", "pods are locked down", false, func(m *manifests) {
			f := false
			m.deployment("kpi").Spec.Template.Spec.SecurityContext.RunAsNonRoot = &f
		}},
		{"no seccomp profile", "pods are locked down", false, func(m *manifests) {
			m.deployment("console").Spec.Template.Spec.SecurityContext.SeccompProfile = nil
		}},
		{"no memory limit", "containers have requests and limits", false, func(m *manifests) {
			delete(container(m, "kpi").Resources.Limits, corev1.ResourceMemory)
		}},
		{"request above limit", "containers have requests and limits", false, func(m *manifests) {
			container(m, "ingest").Resources.Requests[corev1.ResourceCPU] = resource.MustParse("4")
		}},
		{"image without a tag", "images are pinned by tag", false, func(m *manifests) {
			container(m, "kpi").Image = "ticketpulse/kpi"
		}},
		{"image tagged latest", "images are pinned by tag", false, func(m *manifests) {
			container(m, "kpi").Image = "ticketpulse/kpi:latest"
		}},
		{"an env var no service reads", "env vars are ones the service accepts", false, func(m *manifests) {
			c := container(m, "kpi")
			c.Env = append(c.Env, corev1.EnvVar{Name: "TICKETPULSE_REDIS_ADDR", Value: "redis:6379"})
		}},
		{"another service's env var", "env vars are ones the service accepts", false, func(m *manifests) {
			c := container(m, "ingest")
			c.Env = append(c.Env, corev1.EnvVar{Name: "TICKETPULSE_ROUTING_FILE", Value: "/x"})
		}},
		{"a Secret the overlay does not make", "referenced Secrets and ConfigMaps exist or are required", false, func(m *manifests) {
			for i, e := range container(m, "kpi").Env {
				if e.Name == "TICKETPULSE_NATS_URL" {
					container(m, "kpi").Env[i].ValueFrom.SecretKeyRef.Name = "ticketpulse-kpii"
				}
			}
		}},
		{"a key the Secret does not hold", "referenced Secrets and ConfigMaps exist or are required", false, func(m *manifests) {
			for i, e := range container(m, "kpi").Env {
				if e.Name == "TICKETPULSE_REDIS_URL" {
					container(m, "kpi").Env[i].ValueFrom.SecretKeyRef.Key = "redis_url"
				}
			}
		}},
		{"a ConfigMap the overlay does not make", "referenced Secrets and ConfigMaps exist or are required", false, func(m *manifests) {
			for i, v := range m.deployment("notify").Spec.Template.Spec.Volumes {
				if v.ConfigMap != nil {
					m.deployment("notify").Spec.Template.Spec.Volumes[i].ConfigMap.Name = "routing"
				}
			}
		}},
		{"production reads a Secret required.yaml does not list", "referenced Secrets and ConfigMaps exist or are required", true, func(m *manifests) {
			for i, v := range m.deployment("console").Spec.Template.Spec.Volumes {
				if v.Secret != nil && v.Secret.SecretName == "ticketpulse-console" {
					m.deployment("console").Spec.Template.Spec.Volumes[i].Secret.SecretName = "console-session"
				}
			}
		}},
		{"NetworkPolicy selecting nothing", "NetworkPolicies select pods", false, func(m *manifests) {
			for _, p := range m.policies {
				if p.Name == "kpi-api" {
					p.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] = "kpi-service"
				}
			}
		}},
		{"NetworkPolicy egress to a pod that does not exist", "NetworkPolicies select pods", false, func(m *manifests) {
			for _, p := range m.policies {
				if p.Name == "redis-clients" {
					p.Spec.Egress[0].To[0].PodSelector.MatchLabels["app.kubernetes.io/name"] = "valkey"
				}
			}
		}},
		{"NetworkPolicy named port not on the pod", "NetworkPolicy named ports exist", false, func(m *manifests) {
			for _, p := range m.policies {
				if p.Name == "ingest-public" {
					port := intstr.FromString("https")
					p.Spec.Ingress[0].Ports[0].Port = &port
				}
			}
		}},
		{"PDB selecting nothing", "PodDisruptionBudgets select a Deployment", false, func(m *manifests) {
			m.pdbs[0].Spec.Selector.MatchLabels = map[string]string{"app": "kpi"}
		}},
		{"autoscaler on another Deployment", "kpi is autoscaled on its consumer lag", true, func(m *manifests) {
			m.scaledObjects[0].Spec.ScaleTargetRef.Name = "escalation"
		}},
		{"autoscaler on another consumer", "kpi is autoscaled on its consumer lag", true, func(m *manifests) {
			m.scaledObjects[0].Spec.Triggers[0].Metadata["consumer"] = "escalation"
		}},
		{"no autoscaler in production", "kpi is autoscaled on its consumer lag", true, func(m *manifests) {
			m.scaledObjects = nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := stream
			if tc.production {
				src = prodStream
			}
			env := &overlayEnv{production: tc.production, required: req, accepted: acc}
			m := fresh(t, src)
			if errs := runChecks(m, env)[tc.check]; len(errs) > 0 {
				t.Fatalf("the unbroken output already fails %q: %v", tc.check, errs)
			}
			tc.breakIt(m)
			errs := runChecks(m, env)[tc.check]
			if len(errs) == 0 {
				t.Fatalf("check %q did not notice", tc.check)
			}
			t.Logf("%s: %s", tc.check, strings.Join(errs, "; "))
		})
	}
}

// TestStrictDecoding: a misspelt field is an error, as the API server's strict field
// validation makes it, not a silently dropped setting.
func TestStrictDecoding(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"Deployment", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n", `unknown field "spec.replica"`},
		{"probe", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: x\n          image: x:1\n          readinessProbe: {httpGet: {path: /readyz, port: 80}, periodSecond: 5}\n", `unknown field "spec.template.spec.containers[0].readinessProbe.periodSecond"`},
		{"repeated field", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: []\n  ports: []\n", `"ports"`},
		{"ScaledObject", "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec:\n  scaleTargetRef: {name: kpi}\n  maxReplicas: 4\n", `unknown field "maxReplicas"`},
		{"unknown kind", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n", "Widget"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decoding %q: error %v, want one naming %s", tc.doc, err, tc.want)
			}
		})
	}
}

// TestDevCredentialsAgree: the dev overlay's demo passwords on the clients' side (inside the
// services' URLs) are the ones the servers check, so the demo install can log in.
func TestDevCredentialsAgree(t *testing.T) {
	m, err := decode(build(t, "overlays/dev"))
	if err != nil {
		t.Fatal(err)
	}
	secret := func(prefix string) *corev1.Secret {
		for _, s := range m.secrets {
			if s.Name == prefix || strings.HasPrefix(s.Name, prefix+"-") && len(s.Name) == len(prefix)+11 {
				return s
			}
		}
		t.Fatalf("no Secret %s", prefix)
		return nil
	}
	natsPasswords := secret("ticketpulse-nats-passwords")
	acl := string(secret("ticketpulse-redis-acl").Data["users.acl"])
	for _, s := range services {
		sec := secret("ticketpulse-" + s)
		u, err := url.Parse(string(sec.Data["nats-url"]))
		if err != nil {
			t.Fatalf("%s nats-url: %v", s, err)
		}
		pw, _ := u.User.Password()
		if u.User.Username() != s || pw == "" || pw != string(natsPasswords.Data[s]) {
			t.Errorf("%s: nats-url logs in as %q with a password other than ticketpulse-nats-passwords[%s]", s, u.User.Username(), s)
		}
		if _, ok := sec.Data["redis-url"]; !ok {
			continue
		}
		u, err = url.Parse(string(sec.Data["redis-url"]))
		if err != nil {
			t.Fatalf("%s redis-url: %v", s, err)
		}
		pw, _ = u.User.Password()
		sum := sha256.Sum256([]byte(pw))
		if want := "user " + s + " on #" + hex.EncodeToString(sum[:]) + " "; u.User.Username() != s || !strings.Contains(acl, want) {
			t.Errorf("%s: redis-url's user and password are not the ACL file's %q", s, strings.TrimSpace(want))
		}
	}
	def := sha256.Sum256(secret("ticketpulse-redis-auth").Data["password"])
	if !strings.Contains(acl, "user default on #"+hex.EncodeToString(def[:])+" ") {
		t.Error("the ACL file's default user does not have ticketpulse-redis-auth's password (the chart's replicas and Sentinels log in with it)")
	}
}

// TestDevMakesWhatProductionRequires keeps the two overlays' credentials in step.
func TestDevMakesWhatProductionRequires(t *testing.T) {
	req := readRequired(t)
	m, err := decode(build(t, "overlays/dev"))
	if err != nil {
		t.Fatal(err)
	}
	for _, group := range []struct {
		kind  string
		names map[string][]string
	}{{"Secret", req.Secrets}, {"ConfigMap", req.ConfigMaps}, {"Secret", req.Charts}} {
		for name, keys := range group.names {
			have := objectKeys(m, group.kind, generatedName(m, group.kind, name))
			if have == nil {
				t.Errorf("overlays/dev makes no %s %s", group.kind, name)
				continue
			}
			for _, k := range keys {
				if !have[k] {
					t.Errorf("overlays/dev's %s %s has no key %q", group.kind, name, k)
				}
			}
		}
	}
}

// generatedName is the name kustomize gave a generated object (with its content hash).
func generatedName(m *manifests, kind, name string) string {
	var names []string
	if kind == "Secret" {
		for _, s := range m.secrets {
			names = append(names, s.Name)
		}
	} else {
		for _, c := range m.configMaps {
			names = append(names, c.Name)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if n == name || (strings.HasPrefix(n, name+"-") && len(n) == len(name)+11) {
			return n
		}
	}
	return name
}

// TestDevRulesAreTheExample: the dev overlay's rules are a copy of the example the escalation
// tests load, so they stay valid.
func TestDevRulesAreTheExample(t *testing.T) {
	dev, err := os.ReadFile("overlays/dev/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../escalation/rules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dev, example) {
		t.Fatal("overlays/dev/rules.yaml differs from deploy/escalation/rules.example.yaml: copy it again")
	}
}

// TestDevTenantsLoad mounts the dev overlay's Secret ticketpulse-tenants as the pods get it (each
// key a file in one directory) and loads the tenants file from there with the services' own
// loader: a hash file left out of the Secret, or a broken entry, stops every service at start.
func TestDevTenantsLoad(t *testing.T) {
	m, err := decode(build(t, "overlays/dev"))
	if err != nil {
		t.Fatal(err)
	}
	var sec *corev1.Secret
	for _, s := range m.secrets {
		if s.Name == generatedName(m, "Secret", "ticketpulse-tenants") {
			sec = s
		}
	}
	if sec == nil {
		t.Fatal("overlays/dev makes no Secret ticketpulse-tenants")
	}
	mount := func(skip string) string {
		dir := t.TempDir()
		for k, v := range sec.Data {
			if k == skip {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, k), v, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return filepath.Join(dir, "tenants.yaml")
	}
	noEnv := func(string) string { return "" }
	if _, err := tenants.Load(mount(""), noEnv, tenants.SourcesParser[tenants.NoSources](nil)); err != nil {
		t.Fatalf("the dev tenants file does not load as mounted: %v", err)
	}
	if _, err := tenants.Load(mount("ops.hash"), noEnv, tenants.SourcesParser[tenants.NoSources](nil)); err == nil {
		t.Fatal("the tenants file loaded without the hash file it references")
	}
}
