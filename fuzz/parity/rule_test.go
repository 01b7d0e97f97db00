package parity

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// The rule keeps its JSON shape in headers and configurations: the one the
// committed corpora carry.
func TestRuleJSON(t *testing.T) {
	rule := packet.Rule{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, Timestamp: true, SACKPerm: true}
	const want = `"rule":{"mss":1460,"wscale":7,"has_mss":true,"has_wscale":true,"timestamp":true,"sack_perm":true}`
	h := Header{Kernel: "6.1.0-test", HZ: 250, Rule: rule, TTL: 64, HopLimit: 64, Seed: 7}
	b, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), want) || strings.Count(string(b), `"rule"`) != 1 {
		t.Errorf("header JSON %s lacks %s", b, want)
	}
	var back Header
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, h) {
		t.Errorf("header round trip: %+v, %v; want %+v", back, err, h)
	}
	c := Config{Samples: 10, Seed: 1, Rule: rule, Families: []int{4, 6}, HZ: 250}
	if b, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), want) {
		t.Errorf("config JSON %s lacks %s", b, want)
	}
	var cb Config
	if err := json.Unmarshal(b, &cb); err != nil || !reflect.DeepEqual(cb, c) {
		t.Errorf("config round trip: %+v, %v; want %+v", cb, err, c)
	}
	// A header as the corpora hold it.
	const line = `{"kernel":"6.12.0","hz":250,"rule":{"mss":536,"wscale":0,"has_mss":true,"has_wscale":false,"timestamp":false,"sack_perm":true},"ttl":63,"hop_limit":62}`
	var old Header
	if err := json.Unmarshal([]byte(line), &old); err != nil {
		t.Fatal(err)
	}
	if want := (packet.Rule{MSS: 536, HasMSS: true, SACKPerm: true}); old.Rule != want || old.TTL != 63 || old.HopLimit != 62 || old.HZ != 250 {
		t.Errorf("corpus header read as %+v", old)
	}
}
