package engine

import (
	"slices"
	"strconv"
)

// ComputeIdentity returns the credential a build would run with: the uid
// from the socket; the peer's gid, allowed only when it is the account's
// primary gid or one of its groups and not in denyGroups; and the
// supplementary groups the peer holds that the account also has, minus
// denyGroups (names, or gids written as numbers). It is pure and never consults the policy.
//
// A group whose name is unknown cannot be checked against a deny list of
// names, so it is dropped whenever denyGroups is not empty (fail closed).
// An unknown account keeps no groups and no gid.
func ComputeIdentity(p Peer, a Account, denyGroups []string) Identity {
	id := Identity{UID: p.UID, GID: p.GID, Groups: []int{}, Dropped: []int{}}
	if a.Known {
		member := p.GID == a.GID || slices.Contains(a.Groups, p.GID)
		// The gid is as much a credential as a supplementary group: a
		// caller running as (say) gid docker must not get a build with it.
		// Only a name or number on the list counts here: an account's
		// primary group may have no name and is still its own.
		name, named := a.GroupNames[p.GID]
		id.GIDDenied = member && (named && slices.Contains(denyGroups, name) || slices.Contains(denyGroups, strconv.Itoa(p.GID)))
		id.GIDAllowed = member && !id.GIDDenied
	}
	denied := func(g int) bool {
		if len(denyGroups) == 0 {
			return false
		}
		name, named := a.GroupNames[g]
		if !named {
			return true
		}
		return slices.Contains(denyGroups, name) || slices.Contains(denyGroups, strconv.Itoa(g))
	}
	peer := slices.Clone(p.Groups)
	slices.Sort(peer)
	peer = slices.Compact(peer)
	for _, g := range peer {
		member := a.Known && (g == a.GID || slices.Contains(a.Groups, g))
		if member && !denied(g) {
			id.Groups = append(id.Groups, g)
		} else {
			id.Dropped = append(id.Dropped, g)
		}
	}
	return id
}
