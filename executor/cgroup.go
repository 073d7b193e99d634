package executor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupBaseName is the directory builds are created under when the
// daemon's own cgroup is the root of the hierarchy (no delegation): the
// daemon then may not move itself (it would drag every other process's
// accounting along), and keeping builds one level down keeps the root tidy.
const cgroupBaseName = "build-service"

// daemonLeafName is the leaf the daemon moves itself into when it owns a
// delegated cgroup, so that build cgroups can be its siblings (cgroup v2
// allows processes only in leaves once controllers are enabled).
const daemonLeafName = "daemon"

// mount is one cgroup file system from /proc/self/mountinfo.
type mount struct {
	root      string // the mount's root inside the hierarchy
	point     string // where it is mounted
	v2        bool
	superOpts []string
}

// parseMountinfo returns the cgroup and cgroup2 mounts of mountinfo data.
func parseMountinfo(data []byte) []mount {
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		if g[0] != "cgroup" && g[0] != "cgroup2" {
			continue
		}
		out = append(out, mount{
			root:      unescapeMount(f[3]),
			point:     unescapeMount(f[4]),
			v2:        g[0] == "cgroup2",
			superOpts: strings.Split(g[2], ","),
		})
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// procCgroups maps a hierarchy key to this process's path in it: "" for
// the unified (v2) hierarchy, else each v1 controller name ("pids",
// "memory", "cpu", "name=systemd"...).
func parseProcCgroup(data []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

// hostPath joins a mount point with a cgroup path seen in /proc/self/cgroup,
// taking away the part of the path the mount does not show (a mount of a
// sub-tree, or a cgroup namespace root).
func hostPath(m mount, cgPath string) (string, bool) {
	rel := cgPath
	if m.root != "/" {
		r, ok := strings.CutPrefix(cgPath, m.root)
		if !ok || (r != "" && !strings.HasPrefix(r, "/")) {
			return "", false
		}
		rel = r
	}
	return filepath.Join(m.point, rel), true
}

// v1Controllers are the cgroup v1 controllers the executor uses for limits
// when cgroup v2 does not offer them.
var v1Controllers = []string{"pids", "memory", "cpu"}

// cgroupSetup is what New found out about cgroups; computed once per process
// since the daemon moves itself at most once.
type cgroupSetup struct {
	v2Base   string          // directory build cgroups are created in; "" = no writable v2
	v2Why    string          // why there is no v2Base
	v2Ctl    map[string]bool // controllers enabled for children of v2Base
	v1Base   map[string]string
	v1Why    map[string]string
	hasKill  bool // cgroup.kill exists (kernel >= 5.14)
	selfMove string
}

// located is where this process sits in each cgroup hierarchy, as host
// directories, found from mountinfo and /proc/self/cgroup alone.
type located struct {
	v2Dir  string // this process's cgroup v2 directory; "" if none
	v2Root bool   // it is the hierarchy's root (not delegated)
	v2Why  string // why v2Dir is ""
	v1Dir  map[string]string
	v1Why  map[string]string
}

func locate(mountinfo, procCgroup []byte) located {
	l := located{v1Dir: map[string]string{}, v1Why: map[string]string{}}
	mounts := parseMountinfo(mountinfo)
	own := parseProcCgroup(procCgroup)
	if cgPath, ok := own[""]; !ok {
		l.v2Why = "this process is in no cgroup v2 hierarchy"
	} else {
		for _, m := range mounts {
			if !m.v2 {
				continue
			}
			if p, ok := hostPath(m, cgPath); ok {
				l.v2Dir = p
				l.v2Root = cgPath == "/"
				break
			}
		}
		if l.v2Dir == "" {
			l.v2Why = "no cgroup2 mount shows this process's cgroup " + strconv.Quote(cgPath)
		}
	}
	for _, c := range v1Controllers {
		cgPath, ok := own[c]
		if !ok {
			l.v1Why[c] = "no cgroup v1 " + c + " hierarchy"
			continue
		}
		for _, m := range mounts {
			if m.v2 || !contains(m.superOpts, c) {
				continue
			}
			if p, ok := hostPath(m, cgPath); ok {
				l.v1Dir[c] = p
				break
			}
		}
		if l.v1Dir[c] == "" {
			l.v1Why[c] = "no cgroup v1 mount of " + c + " shows this process's cgroup"
		}
	}
	return l
}

func discoverCgroups() *cgroupSetup {
	s := &cgroupSetup{v2Ctl: map[string]bool{}, v1Base: map[string]string{}, v1Why: map[string]string{}}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		s.v2Why = fmt.Sprintf("read mountinfo: %v", err)
		return s
	}
	pc, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		s.v2Why = fmt.Sprintf("read /proc/self/cgroup: %v", err)
		return s
	}
	l := locate(mi, pc)
	if l.v2Dir == "" {
		s.v2Why = l.v2Why
	} else {
		s.setupV2(l.v2Dir, l.v2Root)
	}
	for _, c := range v1Controllers {
		if s.v2Ctl[c] {
			continue
		}
		if l.v1Dir[c] == "" {
			s.v1Why[c] = l.v1Why[c]
			continue
		}
		base := filepath.Join(l.v1Dir[c], cgroupBaseName)
		if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			s.v1Why[c] = fmt.Sprintf("create %s: %v", base, err)
			continue
		}
		s.v1Base[c] = base
	}
	return s
}

// removeStale ends what a daemon that died without cleaning up left behind:
// build cgroups named build-<pid>-... whose pid no longer exists. Their
// processes are killed (cgroup.kill, else SIGKILL per pid, until the cgroup
// is empty) and the cgroup removed, so a crash and restart cannot leave a
// build running with no timeout and no one to report to. It returns how
// many stale cgroups it found.
func removeStale(base string) int {
	ents, err := os.ReadDir(base)
	if err != nil {
		return 0
	}
	found := 0
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "build-")
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join(base, e.Name())
		if daemonAlive(pid, dir) {
			continue // its daemon still runs (a second daemon on this host)
		}
		found++
		for i := 0; i < 100; i++ {
			procs := cgroupPids(dir)
			if len(procs) == 0 {
				break
			}
			if writeCgroupFile(dir, "cgroup.kill", "1") != nil {
				for _, p := range procs {
					_ = unix.Kill(p, unix.SIGKILL)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		for i := 0; i < 50; i++ {
			if err := syscall.Rmdir(dir); err == nil || !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return found
}

// removeStale runs removeStale on every build cgroup base, v2 first (it
// holds every build process; the v1 cgroups are then empty).
func (s *cgroupSetup) removeStale() int {
	n := 0
	if s.v2Base != "" {
		n += removeStale(s.v2Base)
	}
	for _, base := range s.v1Base {
		n += removeStale(base)
	}
	return n
}

// daemonAlive reports whether the process that created the build cgroup
// dir (named after its pid) still runs. A live process with that pid that
// started after the cgroup was made is not it: the pid was reused.
func daemonAlive(pid int, dir string) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	started, ok := procStartTime(string(stat))
	if !ok {
		return true // cannot tell: leave it alone
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return true
	}
	made := time.Unix(st.Mtim.Unix())
	return !started.After(made.Add(time.Second))
}

// procStartTime is when a process started, from its /proc/PID/stat line
// (field 22, in clock ticks since boot) and the boot time in /proc/stat.
func procStartTime(stat string) (time.Time, bool) {
	// The command name (field 2) may hold spaces and parentheses.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return time.Time{}, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			btime, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			const clkTck = 100 // USER_HZ on every Linux architecture Go supports
			return time.Unix(btime, 0).Add(time.Duration(ticks) * time.Second / clkTck), true
		}
	}
	return time.Time{}, false
}

// cgroupPids lists the pids in dir's cgroup.procs.
func cgroupPids(dir string) []int {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if p, err := strconv.Atoi(f); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func (s *cgroupSetup) setupV2(dir string, isRoot bool) {
	var base string
	if isRoot {
		// The hierarchy's root: no internal-process rule applies there, and
		// moving the daemon out of it would be moving it out of everyone's
		// accounting. Builds go one level down, in a directory shared by
		// every daemon on this host (build names carry the daemon's pid).
		base = filepath.Join(dir, cgroupBaseName)
		if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			s.v2Why = fmt.Sprintf("create %s: %v", base, err)
			return
		}
	} else {
		// A delegated cgroup (systemd Delegate=yes): move the daemon into a
		// leaf first, so builds can be siblings and controllers can be
		// enabled in our cgroup.subtree_control.
		leaf := filepath.Join(dir, daemonLeafName)
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			s.v2Why = fmt.Sprintf("create %s: %v", leaf, err)
			return
		}
		if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			s.v2Why = fmt.Sprintf("move the daemon into %s: %v", leaf, err)
			return
		}
		s.selfMove = leaf
		base = dir
	}
	// Probe that a build cgroup can really be created here (read-only
	// mounts, missing delegation and LSMs all show up as a mkdir error).
	probe := filepath.Join(base, fmt.Sprintf("probe-%d", os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		s.v2Why = fmt.Sprintf("create a build cgroup in %s: %v", base, err)
		return
	}
	_, err := os.Stat(filepath.Join(probe, "cgroup.kill"))
	s.hasKill = err == nil
	_ = os.Remove(probe)
	s.v2Base = base

	// Enable the controllers we use for children of base, where the parent
	// offers them. A failure only means the limit falls back to v1.
	avail, _ := os.ReadFile(filepath.Join(base, "cgroup.controllers"))
	have := map[string]bool{}
	for _, c := range strings.Fields(string(avail)) {
		have[c] = true
	}
	for _, c := range v1Controllers {
		if !have[c] {
			continue
		}
		_ = os.WriteFile(filepath.Join(base, "cgroup.subtree_control"), []byte("+"+c), 0)
	}
	enabled, _ := os.ReadFile(filepath.Join(base, "cgroup.subtree_control"))
	for _, c := range strings.Fields(string(enabled)) {
		s.v2Ctl[c] = true
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// buildCgroups are the cgroups of one build: a v2 cgroup for containment
// (and limits where v2 has the controller), and v1 cgroups for limits v2
// cannot apply on hybrid hosts.
type buildCgroups struct {
	v2Dir  string
	v2FD   *os.File // the v2 directory, for CLONE_INTO_CGROUP
	v1Dirs []string
	// v1Procs are the v1 cgroup.procs files, opened by the daemon and
	// handed to the exec helper: the kernel checks the opener's
	// credentials, so the unprivileged helper can join its own process.
	v1Procs []*os.File
	hasKill bool
	applied []string // "pids_max=20 via cgroup1 pids" etc., for the log
	// nproc is an RLIMIT_NPROC for the helper to set when no pids
	// controller is available (per-uid, so imprecise).
	nproc int64
}

// newBuildCgroups creates the cgroups of one build and writes its limits,
// before any process is in them.
func (s *cgroupSetup) newBuildCgroups(name string, lim Limits) (*buildCgroups, error) {
	b := &buildCgroups{hasKill: s.hasKill}
	fail := func(err error) (*buildCgroups, error) {
		b.remove()
		return nil, err
	}
	if s.v2Base != "" {
		d := filepath.Join(s.v2Base, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			return fail(fmt.Errorf("create build cgroup: %w", err))
		}
		b.v2Dir = d
	}
	type want struct {
		ctl, v2file, value string
		v1                 []kv
	}
	var wants []want
	if lim.PidsMax > 0 {
		v := strconv.FormatInt(lim.PidsMax, 10)
		wants = append(wants, want{"pids", "pids.max", v, []kv{{"pids.max", v}}})
	}
	if lim.MemoryMax > 0 {
		v := strconv.FormatInt(lim.MemoryMax, 10)
		wants = append(wants, want{"memory", "memory.max", v, []kv{{"memory.limit_in_bytes", v}}})
	}
	if lim.CPUMax != "" {
		quota, period, err := parseCPUMax(lim.CPUMax)
		if err != nil {
			return fail(err)
		}
		v1 := []kv{{"cpu.cfs_period_us", strconv.FormatInt(period, 10)}}
		q := "-1"
		if quota > 0 {
			q = strconv.FormatInt(quota, 10)
		}
		v1 = append(v1, kv{"cpu.cfs_quota_us", q})
		wants = append(wants, want{"cpu", "cpu.max", strings.TrimSpace(lim.CPUMax), v1})
	}
	for _, w := range wants {
		limitName := map[string]string{"pids": "pids_max", "memory": "memory_max", "cpu": "cpu_max"}[w.ctl]
		if s.v2Ctl[w.ctl] && b.v2Dir != "" {
			if err := writeCgroupFile(b.v2Dir, w.v2file, w.value); err != nil {
				return fail(err)
			}
			if w.ctl == "memory" {
				// One OOM kill takes the whole build down rather than
				// leaving make with a random child missing.
				_ = writeCgroupFile(b.v2Dir, "memory.oom.group", "1")
			}
			b.applied = append(b.applied, fmt.Sprintf("%s=%s via cgroup2 %s", limitName, w.value, w.v2file))
			continue
		}
		if base, ok := s.v1Base[w.ctl]; ok {
			d := filepath.Join(base, name)
			if err := os.Mkdir(d, 0o755); err != nil {
				return fail(fmt.Errorf("create %s build cgroup: %w", w.ctl, err))
			}
			b.v1Dirs = append(b.v1Dirs, d)
			for _, f := range w.v1 {
				if err := writeCgroupFile(d, f.k, f.v); err != nil {
					return fail(err)
				}
			}
			pf, err := os.OpenFile(filepath.Join(d, "cgroup.procs"), os.O_WRONLY, 0)
			if err != nil {
				return fail(fmt.Errorf("open %s build cgroup: %w", w.ctl, err))
			}
			b.v1Procs = append(b.v1Procs, pf)
			b.applied = append(b.applied, fmt.Sprintf("%s=%s via cgroup1 %s", limitName, w.value, d))
			continue
		}
		if w.ctl == "pids" {
			b.nproc = lim.PidsMax
			b.applied = append(b.applied, fmt.Sprintf("%s=%s via RLIMIT_NPROC (per uid: counts every process of the user)", limitName, w.value))
			continue
		}
		b.applied = append(b.applied, fmt.Sprintf("%s=%s NOT ENFORCED (no %s controller)", limitName, w.value, w.ctl))
	}
	if b.v2Dir != "" {
		fd, err := os.Open(b.v2Dir)
		if err != nil {
			return fail(fmt.Errorf("open build cgroup: %w", err))
		}
		b.v2FD = fd
	}
	return b, nil
}

type kv struct{ k, v string }

// parseCPUMax reads cgroup v2 cpu.max syntax: "QUOTA [PERIOD]" or
// "max [PERIOD]", in microseconds. quota -1 means no limit.
func parseCPUMax(s string) (quota, period int64, err error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return 0, 0, fmt.Errorf("cpu_max %q: want \"QUOTA [PERIOD]\" in microseconds", s)
	}
	period = 100000
	if len(f) == 2 {
		period, err = strconv.ParseInt(f[1], 10, 64)
		if err != nil || period < 1000 || period > 1000000 {
			return 0, 0, fmt.Errorf("cpu_max %q: period must be 1000..1000000 microseconds", s)
		}
	}
	if f[0] == "max" {
		return -1, period, nil
	}
	quota, err = strconv.ParseInt(f[0], 10, 64)
	if err != nil || quota < 1000 {
		return 0, 0, fmt.Errorf("cpu_max %q: quota must be \"max\" or at least 1000 microseconds", s)
	}
	return quota, period, nil
}

func writeCgroupFile(dir, name, value string) error {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// closeChildFiles closes what only the child needed.
func (b *buildCgroups) closeChildFiles() {
	for _, f := range b.v1Procs {
		f.Close()
	}
	b.v1Procs = nil
	if b.v2FD != nil {
		b.v2FD.Close()
		b.v2FD = nil
	}
}

// pids lists the processes in the build's cgroups (v2 first, then v1).
func (b *buildCgroups) pids() []int {
	seen := map[int]bool{}
	var out []int
	dirs := b.v1Dirs
	if b.v2Dir != "" {
		dirs = append([]string{b.v2Dir}, dirs...)
	}
	for _, d := range dirs {
		for _, pid := range cgroupPids(d) {
			if pid > 0 && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out
}

// kill kills everything in the build's cgroups: cgroup.kill where the
// kernel has it, else SIGKILL to every listed pid, repeated by the caller
// until the cgroup is empty (a fork can race one pass).
func (b *buildCgroups) kill() {
	if b.v2Dir != "" && b.hasKill {
		if err := writeCgroupFile(b.v2Dir, "cgroup.kill", "1"); err == nil {
			return
		}
	}
	for _, pid := range b.pids() {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

// remove removes the build's cgroups. A cgroup with a live process in it
// cannot be removed (EBUSY); zombies do not count, so a short retry covers
// processes that are still exiting.
func (b *buildCgroups) remove() []error {
	b.closeChildFiles()
	var errs []error
	dirs := append([]string{}, b.v1Dirs...)
	if b.v2Dir != "" {
		dirs = append(dirs, b.v2Dir)
	}
	for _, d := range dirs {
		var err error
		for i := 0; i < 50; i++ {
			err = syscall.Rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			if !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, &os.PathError{Op: "rmdir", Path: d, Err: err})
		}
	}
	b.v1Dirs, b.v2Dir = nil, ""
	return errs
}
