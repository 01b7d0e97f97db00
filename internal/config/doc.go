// Package config is the daemon's configuration: the TOML file of
// "synproxy-lite run --config" and "synproxy-lite check", the Config that
// run's flags spell, and the key and fleet-secret files.
//
// # The file
//
// Load and Parse decode a TOML file (github.com/pelletier/go-toml/v2) into
// a Config, fill the defaults and validate it: a key the format does not
// know is an error, and so is every value run could not use. Errors are
// *Error values that name the key by its path ("services[1].limits.max_conns"),
// its line, and what would be valid. docs/synproxy-lite.toml is the
// commented example. A Config from run's flags (FromFlags) validates the
// same way and names the flags instead ("--port 70000: …").
//
// # The protection policy
//
// Each service's [services.policy] table is its Policy: the allow and
// deny lists (files, and sources written in the configuration), the
// per-source SYN limit, the reflection budget, the mode (protect, monitor,
// on-demand) and the proven clients. Service.EnginePolicy and
// Service.Proven give the engine's and nft's configuration of it;
// Config.Lists reads the lists (list files named relative to the
// configuration's directory), which SIGUSR1 does again. run's policy flags
// fill the same Policy, so the flags and the file share one set of checks.
//
// # Secrets
//
// Secrets are read from files that only their owner may access: a file that
// group or others can read or write is refused with a *KeyFileModeError
// (chmod 600 fixes it), and so is a file owned by neither the process's
// effective user nor root, with a *KeyFileOwnerError: another user could
// have written it. A file holds 64 hexadecimal digits (surrounding
// white space ignored) or exactly 32 raw bytes; package cookie parses them.
// A secret may also be a systemd credential, read from
// $CREDENTIALS_DIRECTORY/NAME (LoadCredential=NAME:PATH in the unit).
// Config.Ring makes the cookie ring; a key with a rotation period seeds
// the rotation (each epoch's key derived from it, as from a fleet secret).
//
// Under systemd a secret may come as a credential (LoadCredential=NAME:PATH
// in the unit): a file name without a slash, with $CREDENTIALS_DIRECTORY
// set, names the file NAME in that directory (SecretPath). Such a file is
// accepted with its group bits set, which is how the ACL granting the
// service's user access shows, but never readable by others.
//
// The package keeps file access out of package cookie, which builds for
// js/wasm with the standard library's crypto and dchest/siphash only.
package config
