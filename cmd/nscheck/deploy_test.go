package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const daemonSetFile = "../../deploy/kubernetes/daemonset.yaml"

// The subset of a Kubernetes manifest that the test looks at.
type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	HostPID     bool         `yaml:"hostPID"`
	HostIPC     bool         `yaml:"hostIPC"`
	HostNetwork bool         `yaml:"hostNetwork"`
	HostUsers   *bool        `yaml:"hostUsers"`
	Tolerations []toleration `yaml:"tolerations"`
	Containers  []struct {
		Name    string   `yaml:"name"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Env     []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom struct {
				FieldRef struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		SecurityContext struct {
			RunAsUser    *int `yaml:"runAsUser"`
			Privileged   bool `yaml:"privileged"`
			Capabilities struct {
				Add []string `yaml:"add"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name     string `yaml:"name"`
		HostPath struct {
			Path string `yaml:"path"`
		} `yaml:"hostPath"`
	} `yaml:"volumes"`
}

type toleration struct {
	Operator string `yaml:"operator"`
}

// daemonSet parses every document of the manifest file and returns the
// DaemonSet and the kinds seen.
func daemonSet(t *testing.T) (manifest, []string) {
	t.Helper()
	data, err := os.ReadFile(daemonSetFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var ds manifest
	var kinds []string
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s does not parse: %v", daemonSetFile, err)
		}
		var m manifest
		if err := node.Decode(&m); err != nil {
			t.Fatalf("%s: %v", daemonSetFile, err)
		}
		kinds = append(kinds, m.APIVersion+"/"+m.Kind)
		if m.Kind == "DaemonSet" {
			ds = m
		}
	}
	return ds, kinds
}

// The DaemonSet names the privileges nscheck needs to test the node's
// kernel from the node's side, and the report file per node.
func TestDaemonSetPrivileges(t *testing.T) {
	ds, kinds := daemonSet(t)
	if !slices.Equal(kinds, []string{"v1/Namespace", "apps/v1/DaemonSet"}) {
		t.Fatalf("documents %v", kinds)
	}
	pod := ds.Spec.Template.Spec
	for k, v := range ds.Spec.Selector.MatchLabels {
		if pod := ds.Spec.Template.Metadata.Labels[k]; pod != v {
			t.Errorf("selector %s=%s does not match the pod's labels", k, v)
		}
	}
	if !pod.HostPID || !pod.HostIPC || !pod.HostNetwork {
		t.Errorf("host namespaces: pid %v ipc %v network %v, want all", pod.HostPID, pod.HostIPC, pod.HostNetwork)
	}
	if pod.HostUsers != nil && !*pod.HostUsers {
		t.Error("hostUsers false: nscheck would run rootless in a user namespace")
	}
	if !slices.Contains(pod.Tolerations, toleration{Operator: "Exists"}) {
		t.Error("no toleration of every taint: some nodes would have no report")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if !sc.Privileged || sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("security context: privileged %v, runAsUser %v", sc.Privileged, sc.RunAsUser)
	}
	for _, capName := range []string{"SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SETUID", "SETGID"} {
		if !slices.Contains(sc.Capabilities.Add, capName) {
			t.Errorf("capability %s not named", capName)
		}
	}
	nodeName := false
	for _, e := range c.Env {
		nodeName = nodeName || e.Name == "NODE_NAME" && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	}
	if !nodeName {
		t.Error("NODE_NAME does not come from spec.nodeName (downward API)")
	}
	mounted := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounted[m.Name] = m.MountPath
	}
	for _, v := range pod.Volumes {
		if v.HostPath.Path == "/var/lib/nscheck" && mounted[v.Name] == "/var/lib/nscheck" {
			return
		}
	}
	t.Error("no hostPath /var/lib/nscheck mounted at /var/lib/nscheck: the reports would die with the pod")
}

// The pod's command line works: run as the pod would (with the node name
// in NODE_NAME, the node's directories replaced by temporary ones), it
// leaves <node>.json with the node as its host, the page and the metrics.
// The image has no shell: the command is nscheck itself, repeating with
// --every (here once: the child's marker is set).
func TestDaemonSetCommandRuns(t *testing.T) {
	needRoot(t)
	ds, _ := daemonSet(t)
	c := ds.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Command, []string{"/nscheck"}) || len(c.Args) < 2 || c.Args[0] != "run" || !slices.Contains(c.Args, "--every") {
		t.Fatalf("command %q args %q", c.Command, c.Args)
	}
	dir := t.TempDir()
	reports, textfile := filepath.Join(dir, "reports"), filepath.Join(dir, "textfile")
	for _, d := range []string{reports, textfile} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Kubernetes' $(VAR) expansion, with the pod's env.
	expand := strings.NewReplacer("$(NODE_NAME)", "worker-3", "$(NSCHECK_INTERVAL)", "24h",
		"/var/lib/nscheck", reports, "/var/lib/node_exporter/textfile_collector", textfile)
	var args []string
	for _, a := range c.Args {
		args = append(args, expand.Replace(a))
	}
	// One property keeps it short; the flags are the manifest's.
	cmd := exec.Command(os.Args[0], append(args, "--focus", "uts.distinct-ns")...)
	cmd.Env = append(os.Environ(), cliEnv+"=1", repeatedEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", args, err, out)
	}
	rep := readReport(t, filepath.Join(reports, "worker-3.json"))
	if rep.Host != "worker-3" || len(rep.Results) != 1 {
		t.Errorf("report host %q, %d results", rep.Host, len(rep.Results))
	}
	for _, f := range []string{filepath.Join(reports, "worker-3.html"), filepath.Join(textfile, "nscheck.prom")} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
}
