package server

import (
	"testing"
	"time"
)

func TestRefusalLimiterWindows(t *testing.T) {
	var l refusalLimiter
	t0 := time.Unix(1000, 0)
	for i := 0; i < refusalLogBurst; i++ {
		if ok, left := l.allow(1001, t0); !ok || left != 0 {
			t.Fatalf("refusal %d: allow = %v, %d", i, ok, left)
		}
	}
	for i := 0; i < 500; i++ {
		if ok, _ := l.allow(1001, t0.Add(time.Second)); ok {
			t.Fatalf("refusal %d past the burst was logged", refusalLogBurst+i)
		}
	}
	if ok, left := l.allow(1002, t0.Add(time.Second)); !ok || left != 0 {
		t.Errorf("another uid is limited by the first one's flood: %v, %d", ok, left)
	}
	if ok, left := l.allow(1001, t0.Add(refusalLogWindow)); !ok || left != 500 {
		t.Errorf("next window: allow = %v, %d left out; want true, 500", ok, left)
	}
	for uid := 0; uid < 3*refusalLogPrune; uid++ {
		l.allow(100000+uid, t0.Add(time.Duration(uid)*refusalLogWindow))
	}
	if len(l.by) > refusalLogPrune+1 {
		t.Errorf("%d uids remembered, want expired ones pruned", len(l.by))
	}
}
