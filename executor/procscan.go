package executor

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// procInfo is what the fallback needs to know about one process.
type procInfo struct {
	pid, ppid, pgid int
	state           byte
}

// readStat parses /proc/PID/stat. The command name is in parentheses and
// may itself contain spaces and parentheses, so the fields after it are
// found from the last ')'.
func readStat(pid int) (procInfo, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return procInfo{}, false
	}
	f := strings.Fields(string(data[i+2:]))
	if len(f) < 3 {
		return procInfo{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgid, _ := strconv.Atoi(f[2])
	return procInfo{pid: pid, ppid: ppid, pgid: pgid, state: f[0][0]}, true
}

// realUID reads the real uid of a process from /proc/PID/status (the
// directory's owner is the effective uid, and root for non-dumpable ones).
func realUID(pid int) (int, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				uid, err := strconv.Atoi(f[0])
				return uid, err == nil
			}
		}
	}
	return 0, false
}

// allProcs snapshots /proc.
func allProcs() []procInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := make([]procInfo, 0, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readStat(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// registry holds the pids of build leaders the executor is waiting for, so
// that the subreaper's reaper never takes their exit status from os/exec,
// and the descendant sweep never attributes one build's leader to another.
type registry struct {
	mu      sync.Mutex // held across Start and registration, and by each reap pass
	leaders map[int]bool
	uids    map[int]bool // uids builds have run as: only their orphans are reaped
}

var reg = &registry{leaders: map[int]bool{}, uids: map[int]bool{}}

func (r *registry) isLeader(pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leaders[pid]
}

// sweep returns the processes that belong to a build in the fallback mode
// (no cgroup): the leader while alive, its process group, and, because the
// daemon is a child subreaper, orphans reparented to the daemon that run as
// the build's uid and are not some build's leader, together with every
// descendant of all of these. Zombies are left out (they are dead already;
// the reaper collects those that are ours). One scan can miss a process
// that is being reparented while /proc is read; callers confirm an empty
// result with a second scan.
//
// What it cannot tell apart: two concurrent builds of the same uid whose
// orphans both land on the daemon; one build's end then also ends the other's
// orphaned daemons. A process that escapes while its ancestors are alive and
// then is passed to a process outside the tree (impossible without
// ptrace-like help) is not found either.
func sweep(leader, pgid, uid int, leaderAlive bool) []int {
	procs := allProcs()
	self := os.Getpid()
	children := map[int][]int{}
	in := map[int]bool{}
	var queue []int
	add := func(pid int) {
		if !in[pid] {
			in[pid] = true
			queue = append(queue, pid)
		}
	}
	// Zombies take part in the walk (their children, read a moment earlier,
	// may still name them as parent: /proc is no consistent snapshot) but
	// are left out of the result.
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
		switch {
		case leaderAlive && p.pid == leader:
			add(p.pid)
		case p.pgid == pgid && pgid > 1:
			add(p.pid)
		case p.ppid == self && p.pid != leader:
			if reg.isLeader(p.pid) {
				continue
			}
			if u, ok := realUID(p.pid); ok && u == uid {
				add(p.pid)
			}
		}
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if reg.isLeader(c) {
				continue
			}
			add(c)
		}
	}
	state := map[int]byte{}
	for _, p := range procs {
		state[p.pid] = p.state
	}
	out := make([]int, 0, len(in))
	for pid := range in {
		if s := state[pid]; s != 'Z' && s != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// subreaper makes the daemon a child subreaper once, and starts the reaper
// that collects orphaned zombies. Only the fallback mode needs it: with a
// cgroup, cgroup.kill already finds everything.
var subreaperOnce sync.Once
var subreaperErr error

func startSubreaper() error {
	subreaperOnce.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			subreaperErr = os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
			return
		}
		go reaper()
	})
	return subreaperErr
}

// reaper collects zombies that were reparented to the daemon. It must not
// call wait4(-1): that would take exit statuses os/exec is waiting for. It
// reaps only children that are zombies, are not a registered build leader,
// and run as a uid a build has run as (never root): any other child of the
// daemon belongs to someone else's exec.Cmd.
func reaper() {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		reapOrphans()
	}
}

func reapOrphans() {
	self := os.Getpid()
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for _, p := range allProcs() {
		if p.ppid != self || p.state != 'Z' || reg.leaders[p.pid] {
			continue
		}
		uid, ok := realUID(p.pid)
		if !ok || uid == 0 || !reg.uids[uid] {
			continue
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(p.pid, &ws, unix.WNOHANG, nil)
	}
}
