// Package account looks a caller's uid up in the host account database
// (passwd and group, through os/user: pure Go reads /etc/passwd and
// /etc/group, a cgo build asks NSS). It owns that lookup only: it does not
// decide whether the account may build, and it never trusts a name or gid
// the client sent.
//
// It deliberately does not import engine (which links OPA); the server
// converts Account into engine.Account.
package account

import (
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"
)

// Account is one host account. Known is false when the uid has no entry;
// the other fields are then zero apart from UID.
type Account struct {
	Known  bool
	Name   string
	Home   string
	UID    int
	GID    int   // primary gid
	Groups []int // every group the account is in, primary included, sorted
	// GroupNames maps gids in Groups to names (a gid without a group entry
	// is absent).
	GroupNames map[int]string
}

// Lookup returns the account of uid. An unknown uid is not an error: it
// returns Known:false. Errors are failures of the database itself.
func Lookup(uid int) (Account, error) {
	acct := Account{UID: uid}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		var unknown user.UnknownUserIdError
		if errors.As(err, &unknown) {
			return acct, nil
		}
		return acct, fmt.Errorf("account: look up uid %d: %w", uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return acct, fmt.Errorf("account: uid %d: primary gid %q: %w", uid, u.Gid, err)
	}
	ids, err := u.GroupIds()
	if err != nil {
		return acct, fmt.Errorf("account: groups of %s: %w", u.Username, err)
	}
	groups := []int{gid}
	for _, s := range ids {
		g, err := strconv.Atoi(s)
		if err != nil {
			return acct, fmt.Errorf("account: groups of %s: gid %q: %w", u.Username, s, err)
		}
		groups = append(groups, g)
	}
	slices.Sort(groups)
	groups = slices.Compact(groups)
	names := make(map[int]string, len(groups))
	for _, g := range groups {
		grp, err := user.LookupGroupId(strconv.Itoa(g))
		if err != nil {
			var unknown user.UnknownGroupIdError
			if errors.As(err, &unknown) {
				continue
			}
			return acct, fmt.Errorf("account: look up gid %d: %w", g, err)
		}
		names[g] = grp.Name
	}
	return Account{
		Known:      true,
		Name:       u.Username,
		Home:       u.HomeDir,
		UID:        uid,
		GID:        gid,
		Groups:     groups,
		GroupNames: names,
	}, nil
}

// ErrUnknownUser is returned by UIDOf for a name with no account.
var ErrUnknownUser = errors.New("no such user")

// UIDOf returns the uid of the account called name.
func UIDOf(name string) (int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return 0, fmt.Errorf("account: %q: %w", name, ErrUnknownUser)
		}
		return 0, fmt.Errorf("account: look up %q: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return 0, fmt.Errorf("account: uid %q of %s: %w", u.Uid, name, err)
	}
	return uid, nil
}
