package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// TestRunLogFormat: --log-format text (the default) or json; anything
// else is refused naming the flag and the valid values; json writes one
// object a line with time, level and msg, at the level given.
func TestRunLogFormat(t *testing.T) {
	base := []string{"--port", "8080", "--backend", "10.99.0.1:80"}
	for _, tc := range []struct {
		args    []string
		want    string
		wantErr string
	}{
		{nil, "text", ""},
		{[]string{"--log-format", "json"}, "json", ""},
		{[]string{"--log-format", "text"}, "text", ""},
		{[]string{"--log-format", "xml"}, "", `--log-format xml: want text or json`},
	} {
		o, err := parseRunFlags(append(base, tc.args...), io.Discard)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: error %v, want %q", tc.args, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case o.logFormat != tc.want:
			t.Errorf("%v: format %q, want %q", tc.args, o.logFormat, tc.want)
		}
	}

	var buf bytes.Buffer
	log := newLogger(&buf, "json", slog.LevelInfo)
	log.Debug("not shown")
	log.Info("proxy running", "port", 8080, "backend", "10.99.0.1:80")
	log.Warn("backend dial failed", "reason", "refused", "err", io.EOF)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("json log: %d lines, want 2:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"INFO proxy running", "WARN backend dial failed"} {
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			t.Fatalf("line %q: %v", lines[i], err)
		}
		if got := rec["level"].(string) + " " + rec["msg"].(string); got != want || rec["time"] == nil {
			t.Errorf("line %q: %q, want %q with a time", lines[i], got, want)
		}
	}
	buf.Reset()
	newLogger(&buf, "text", slog.LevelInfo).Info("proxy running", "port", 8080)
	if !strings.Contains(buf.String(), "level=INFO msg=\"proxy running\" port=8080") {
		t.Errorf("text log: %q", buf.String())
	}
}
