package account_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/build-service/build-service/account"
	"github.com/build-service/build-service/internal/testenv"
)

func TestLookupFindsTestUsersWithAllTheirGroups(t *testing.T) {
	alice, bob := testenv.EnsureUsers(t)
	team := testenv.GroupID(t, testenv.GroupShared)
	denied := testenv.GroupID(t, testenv.GroupDenied)
	for _, tc := range []struct {
		name      string
		user      testenv.User
		wantNames map[int]string
	}{
		{"alice is in her own group, bs-team and bs-denied", alice,
			map[int]string{alice.GID: testenv.UserAlice, team: testenv.GroupShared, denied: testenv.GroupDenied}},
		{"bob is in his own group and bs-team only", bob,
			map[int]string{bob.GID: testenv.UserBob, team: testenv.GroupShared}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := account.Lookup(tc.user.UID)
			if err != nil {
				t.Fatal(err)
			}
			if !a.Known || a.Name != tc.user.Name || a.UID != tc.user.UID || a.GID != tc.user.GID || a.Home != tc.user.Home {
				t.Errorf("account = %+v, want %+v", a, tc.user)
			}
			want := make([]int, 0, len(tc.wantNames))
			for g := range tc.wantNames {
				want = append(want, g)
			}
			slices.Sort(want)
			if !slices.Equal(a.Groups, want) {
				t.Errorf("groups = %v, want %v", a.Groups, want)
			}
			for g, n := range tc.wantNames {
				if a.GroupNames[g] != n {
					t.Errorf("group name of %d = %q, want %q", g, a.GroupNames[g], n)
				}
			}
		})
	}
}

func TestLookupOfRootIncludesPrimaryGroup(t *testing.T) {
	a, err := account.Lookup(0)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Known || a.Name != "root" || a.GID != 0 || !slices.Contains(a.Groups, 0) || a.GroupNames[0] != "root" {
		t.Errorf("root = %+v", a)
	}
}

func TestLookupOfUnknownUIDIsNotAnError(t *testing.T) {
	for _, uid := range []int{65534 * 1000, 2147483000} {
		a, err := account.Lookup(uid)
		if err != nil {
			t.Fatalf("uid %d: %v", uid, err)
		}
		if a.Known || a.Name != "" || a.UID != uid || a.Groups != nil {
			t.Errorf("uid %d: %+v, want unknown", uid, a)
		}
	}
}

func TestUIDOfResolvesNamesAndRefusesUnknownOnes(t *testing.T) {
	alice, _ := testenv.EnsureUsers(t)
	uid, err := account.UIDOf(testenv.UserAlice)
	if err != nil || uid != alice.UID {
		t.Errorf("UIDOf(%s) = %d, %v; want %d", testenv.UserAlice, uid, err, alice.UID)
	}
	if _, err := account.UIDOf("bs-nobody-at-all"); !errors.Is(err, account.ErrUnknownUser) {
		t.Errorf("UIDOf(unknown) error = %v, want ErrUnknownUser", err)
	}
}
