package proxy

import (
	"errors"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *Config
		ok   bool
	}{
		{"nil", nil, false},
		{"no port", &Config{}, false},
		{"negative workers", &Config{Port: 80, Workers: -1}, false},
		{"too many workers", &Config{Port: 80, Workers: 1025}, false},
		{"queues past 65535", &Config{Port: 80, Queue: 65535, Workers: 2}, false},
		{"negative backlog", &Config{Port: 80, Backlog: -1}, false},
		{"minimal", &Config{Port: 80}, true},
		{"last queue", &Config{Port: 80, Queue: 65534, Workers: 2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.validate()
			if tc.ok && err != nil {
				t.Fatalf("validate: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrConfig) {
				t.Fatalf("validate = %v, want ErrConfig", err)
			}
		})
	}
}
