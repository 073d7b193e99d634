package testenv

import (
	"bytes"
	"strings"
	"sync"
)

// LogBuffer collects a daemon's log, written from many goroutines (or a
// child's stderr) and read by the test while it grows.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Count is how many times substr occurs in the log.
func (s *LogBuffer) Count(substr string) int {
	return strings.Count(s.String(), substr)
}

// CountLines is how many log lines contain substr.
func (s *LogBuffer) CountLines(substr string) int {
	n := 0
	for _, l := range strings.Split(s.String(), "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}
