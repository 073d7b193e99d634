// Package e2e holds the end-to-end tests: they build cmd/build-service and
// cmd/build-cli, start the daemon as a child process on a temporary socket,
// and run the make wrapper as real users inside a stand-in container (a
// private mount namespace, internal/testenv.Container) on the bundled
// example in examples/.
//
// It has no code of its own beyond the tests and must not be imported.
// The tests need root; they skip as a normal user and fail in CI without it.
package e2e
