package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/build-service/build-service/internal/strictdir"
)

// CheckCommands checks, on this host, that every build.commands entry names
// an existing regular file that others may execute (builds run as their
// callers, not as root). Validate does not do this: a config is valid on
// any host; this is check-config's and the daemon's startup check.
func (b Build) CheckCommands() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(b.Commands)) {
		path := b.Commands[name]
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("build.commands.%s: %w", name, err))
		case !fi.Mode().IsRegular():
			errs = append(errs, fmt.Errorf("build.commands.%s: %s is not a regular file", name, path))
		case fi.Mode().Perm()&0o001 == 0:
			errs = append(errs, fmt.Errorf("build.commands.%s: %s is not executable by other users (mode %04o), so builds could not run it", name, path, fi.Mode().Perm()))
		}
	}
	return errors.Join(errs...)
}

// CheckCommandsSafe checks that no build.commands binary that exists could
// be replaced by anyone but root (or the daemon's user): the daemon runs it
// for every caller, so a make in a directory one user can write would run
// that user's code as everyone else. A missing binary is CheckCommands'
// concern, not this one's. Unlike CheckCommands, a failure here is fatal
// at start and on reload.
func (b Build) CheckCommandsSafe() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(b.Commands)) {
		path := b.Commands[name]
		if _, err := os.Stat(path); err != nil {
			continue
		}
		if err := strictdir.CheckFile(path); err != nil {
			errs = append(errs, fmt.Errorf("build.commands.%s: every caller's builds run it: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
