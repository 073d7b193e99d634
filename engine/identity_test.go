package engine

import (
	"reflect"
	"testing"
)

func TestComputeIdentity(t *testing.T) {
	alice := Account{
		Known: true, Name: "alice", UID: 1000, GID: 1000,
		Groups:     []int{1000, 27, 100, 998},
		GroupNames: map[int]string{1000: "alice", 27: "sudo", 100: "users", 998: "docker"},
	}
	deny := []string{"root", "sudo", "wheel", "adm", "docker", "lxd", "libvirt", "disk"}
	cases := []struct {
		name string
		peer Peer
		acc  Account
		deny []string
		want Identity
	}{
		{
			name: "the caller keeps the account's groups it holds, minus the denied ones",
			peer: Peer{UID: 1000, GID: 1000, Groups: []int{1000, 27, 100, 998}},
			acc:  alice, deny: deny,
			want: Identity{UID: 1000, GID: 1000, Groups: []int{100, 1000}, GIDAllowed: true, Dropped: []int{27, 998}},
		},
		{
			name: "a group the container invented is dropped even if the account has it by another name",
			peer: Peer{UID: 1000, GID: 1000, Groups: []int{1000, 4242}},
			acc:  alice, deny: deny,
			want: Identity{UID: 1000, GID: 1000, Groups: []int{1000}, GIDAllowed: true, Dropped: []int{4242}},
		},
		{
			name: "a container that passes no groups gets a build with none",
			peer: Peer{UID: 1000, GID: 1000},
			acc:  alice, deny: deny,
			want: Identity{UID: 1000, GID: 1000, Groups: []int{}, GIDAllowed: true, Dropped: []int{}},
		},
		{
			name: "a supplementary group of the account is an allowed gid",
			peer: Peer{UID: 1000, GID: 100, Groups: []int{100}},
			acc:  alice, deny: deny,
			want: Identity{UID: 1000, GID: 100, Groups: []int{100}, GIDAllowed: true, Dropped: []int{}},
		},
		{
			name: "a gid the account does not have is not allowed",
			peer: Peer{UID: 1000, GID: 0, Groups: []int{0}},
			acc:  alice, deny: deny,
			want: Identity{UID: 1000, GID: 0, Groups: []int{}, GIDAllowed: false, Dropped: []int{0}},
		},
		{
			name: "attack: running as a denied supplementary group (sg docker make) does not give the build that gid",
			peer: Peer{UID: 1000, GID: 998, Groups: []int{1000, 998}},
			acc:  alice, deny: deny,
			want: Identity{UID: 1000, GID: 998, Groups: []int{1000}, GIDAllowed: false, GIDDenied: true, Dropped: []int{998}},
		},
		{
			name: "attack: a denied gid written as a number is refused too",
			peer: Peer{UID: 1000, GID: 100, Groups: []int{100}},
			acc:  alice, deny: []string{"100"},
			want: Identity{UID: 1000, GID: 100, Groups: []int{}, GIDAllowed: false, GIDDenied: true, Dropped: []int{100}},
		},
		{
			name: "a primary gid with no group name is still the account's own",
			peer: Peer{UID: 1000, GID: 1000, Groups: []int{1000}},
			acc:  Account{Known: true, UID: 1000, GID: 1000, Groups: []int{1000}, GroupNames: map[int]string{}},
			deny: deny,
			want: Identity{UID: 1000, GID: 1000, Groups: []int{}, GIDAllowed: true, Dropped: []int{1000}},
		},
		{
			name: "an unknown account gets no gid and no groups",
			peer: Peer{UID: 12345, GID: 12345, Groups: []int{12345}},
			acc:  Account{Known: false}, deny: deny,
			want: Identity{UID: 12345, GID: 12345, Groups: []int{}, GIDAllowed: false, Dropped: []int{12345}},
		},
		{
			name: "a group with no name cannot be checked against the deny list and is dropped",
			peer: Peer{UID: 1000, GID: 1000, Groups: []int{1000, 555}},
			acc:  Account{Known: true, UID: 1000, GID: 1000, Groups: []int{1000, 555}, GroupNames: map[int]string{1000: "alice"}},
			deny: deny,
			want: Identity{UID: 1000, GID: 1000, Groups: []int{1000}, GIDAllowed: true, Dropped: []int{555}},
		},
		{
			name: "a numeric deny entry denies that gid, and an empty deny list keeps unnamed groups",
			peer: Peer{UID: 1000, GID: 1000, Groups: []int{555, 1000, 1000}},
			acc:  Account{Known: true, UID: 1000, GID: 1000, Groups: []int{1000, 555}, GroupNames: map[int]string{1000: "alice", 555: "x"}},
			deny: []string{"555"},
			want: Identity{UID: 1000, GID: 1000, Groups: []int{1000}, GIDAllowed: true, Dropped: []int{555}},
		},
		{
			name: "with no deny list every shared group is kept, once",
			peer: Peer{UID: 1000, GID: 1000, Groups: []int{998, 1000, 998}},
			acc:  alice, deny: nil,
			want: Identity{UID: 1000, GID: 1000, Groups: []int{998, 1000}, GIDAllowed: true, Dropped: []int{}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ComputeIdentity(c.peer, c.acc, c.deny)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("ComputeIdentity() = %+v\nwant %+v", got, c.want)
			}
		})
	}
}
