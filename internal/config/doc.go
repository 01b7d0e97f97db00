// Package config is the daemon's configuration: key and fleet-secret files.
//
// Secrets are read from files that only their owner may access: a file that
// group or others can read or write is refused with a *KeyFileModeError
// (chmod 600 fixes it), and so is a file owned by neither the process's
// effective user nor root, with a *KeyFileOwnerError: another user could
// have written it. A file holds 64 hexadecimal digits (surrounding
// white space ignored) or exactly 32 raw bytes; package cookie parses them.
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
