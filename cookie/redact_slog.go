//go:build !js

package cookie

import "log/slog"

// The slog.LogValuer methods live apart so that the js/wasm build, where
// log/slog would only enlarge the binary, does without them; String and
// GoString redact the secrets in every build.

// LogValue redacts the secret in log/slog output.
func (k Key) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// LogValue redacts the secret in log/slog output.
func (f FleetSecret) LogValue() slog.Value { return slog.StringValue("REDACTED") }
