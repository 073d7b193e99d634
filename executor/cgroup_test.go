package executor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/build-service/build-service/internal/testenv"
)

func TestLocateFindsTheCgroupsFromMountinfoNotFromFixedPaths(t *testing.T) {
	cases := []struct {
		name   string
		host   string
		v2Dir  string
		v2Root bool
		v1     map[string]string
	}{
		{
			name:   "a hybrid host: cgroup2 at /sys/fs/cgroup/unified, pids and memory on v1",
			host:   "hybrid",
			v2Dir:  "/sys/fs/cgroup/unified",
			v2Root: true,
			v1: map[string]string{
				"pids":   "/sys/fs/cgroup/pids",
				"memory": "/sys/fs/cgroup/memory/process_api/2c3b45a460ba146cc0e72b2d6029cea9",
				"cpu":    "/sys/fs/cgroup/cpu",
			},
		},
		{
			name:  "a systemd host with everything on v2 and a delegated service cgroup",
			host:  "unified",
			v2Dir: "/sys/fs/cgroup/system.slice/build-service.service",
			v1:    map[string]string{},
		},
		{
			name:  "a container whose cgroup2 mount shows only its own sub-tree",
			host:  "container",
			v2Dir: "/sys/fs/cgroup/app",
			v1:    map[string]string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mi, err := os.ReadFile(filepath.Join("testdata", "mountinfo-"+tc.host))
			if err != nil {
				t.Fatal(err)
			}
			pc, err := os.ReadFile(filepath.Join("testdata", "cgroup-"+tc.host))
			if err != nil {
				t.Fatal(err)
			}
			l := locate(mi, pc)
			if l.v2Dir != tc.v2Dir || l.v2Root != tc.v2Root {
				t.Errorf("v2 = %q (root %v), want %q (root %v); why: %s", l.v2Dir, l.v2Root, tc.v2Dir, tc.v2Root, l.v2Why)
			}
			for c, want := range tc.v1 {
				if l.v1Dir[c] != want {
					t.Errorf("v1 %s = %q, want %q (%s)", c, l.v1Dir[c], want, l.v1Why[c])
				}
			}
			for c, got := range l.v1Dir {
				if _, ok := tc.v1[c]; !ok {
					t.Errorf("unexpected v1 %s at %q", c, got)
				}
			}
		})
	}
}

func TestMountinfoEscapesAreUndone(t *testing.T) {
	for in, want := range map[string]string{
		`/srv/with\040space`: "/srv/with space",
		`/tab\011here`:       "/tab\there",
		`/back\134slash`:     `/back\slash`,
		`/plain`:             "/plain",
		`/short\04`:          `/short\04`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCPUMaxIsReadInCgroupV2Syntax(t *testing.T) {
	cases := []struct {
		in            string
		quota, period int64
		wantErr       bool
		name          string
	}{
		{name: "half a CPU", in: "50000 100000", quota: 50000, period: 100000},
		{name: "a quota with the default period", in: "200000", quota: 200000, period: 100000},
		{name: "no limit", in: "max", quota: -1, period: 100000},
		{name: "no limit with a period", in: "max 50000", quota: -1, period: 50000},
		{name: "garbage is refused", in: "lots", wantErr: true},
		{name: "a tiny quota is refused", in: "10", wantErr: true},
		{name: "three fields are refused", in: "1 2 3", wantErr: true},
		{name: "a period out of range is refused", in: "50000 5", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, p, err := parseCPUMax(tc.in)
			if (err != nil) != tc.wantErr || (!tc.wantErr && (q != tc.quota || p != tc.period)) {
				t.Errorf("parseCPUMax(%q) = %d, %d, %v", tc.in, q, p, err)
			}
		})
	}
}

// TestADelegatedDaemonMovesItselfIntoALeaf runs a child of this test binary
// in a cgroup of its own, as systemd's Delegate=yes would, and checks that
// it moves into <cgroup>/daemon and runs its build in a sibling cgroup.
func TestADelegatedDaemonMovesItselfIntoALeaf(t *testing.T) {
	if os.Getenv("BS_DELEGATED_CHILD") == "1" {
		delegatedChild(t)
		return
	}
	u := carol(t)
	probe := newExecutor(t, Options{})
	if probe.cg.v2Base == "" {
		t.Fatalf("no writable cgroup v2 here: %s", probe.Mode())
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	pc, _ := os.ReadFile("/proc/self/cgroup")
	own := locate(mi, pc).v2Dir
	svc := filepath.Join(own, fmt.Sprintf("bs-test-service-%d", os.Getpid()))
	if err := os.Mkdir(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() {
		os.Remove(filepath.Join(svc, daemonLeafName))
		if err := os.Remove(svc); err != nil {
			t.Errorf("remove the service cgroup: %v", err)
		}
	}()
	fd, err := os.Open(svc)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestADelegatedDaemonMovesItselfIntoALeaf$", "-test.v")
	cmd.Env = append(os.Environ(), "BS_DELEGATED_CHILD=1", "BS_HELPER="+testHelper, "BS_CAROL_UID="+strconv.Itoa(u.UID), "BS_CAROL_GID="+strconv.Itoa(u.GID))
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	rel := strings.TrimPrefix(svc, own)
	for _, want := range []string{
		"mode=cgroup2 " + svc + ";",
		"daemon=0::" + rel + "/daemon\n",
		"build=0::" + rel + "/build-",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
	assertNothingLeft(t, u)
}

func delegatedChild(t *testing.T) {
	x, err := New(Options{HelperPath: os.Getenv("BS_HELPER"), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("mode=%s\n", x.Mode())
	self, _ := os.ReadFile("/proc/self/cgroup")
	fmt.Printf("daemon=%s", lastLine(string(self)))
	uid, _ := strconv.Atoi(os.Getenv("BS_CAROL_UID"))
	gid, _ := strconv.Atoi(os.Getenv("BS_CAROL_GID"))
	u := testenv.User{UID: uid, GID: gid, Groups: []int{gid}}
	res, c := runJob(t, x, job(u, "/", "/bin/cat", "/proc/self/cgroup"))
	out, _ := c.out()
	if res.Code != 0 {
		t.Fatalf("result %+v\n%s", res, c)
	}
	fmt.Printf("build=%s", lastLine(out))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1] + "\n"
}
