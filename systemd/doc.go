// Package systemd holds build-service's systemd units (build-service.service
// and build-service.socket) and the tests that keep them verified, hardened
// and in step with the sample config. It has no code: the daemon's side of
// socket activation and sd_notify lives in server and cmd/build-service.
package systemd
