package parity

import (
	"encoding/json"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// ruleJSON is the JSON shape of a packet.Rule in the guest's configuration,
// streams and corpora (fuzz/testdata/parity): the nftables synproxy
// statement's options. The rule's TTL and ECN are not part of it: the TTL
// is the header's ttl and hop_limit, and nftables cannot set ECN.
type ruleJSON struct {
	MSS       uint16 `json:"mss"`
	WScale    uint8  `json:"wscale"`
	HasMSS    bool   `json:"has_mss"`
	HasWScale bool   `json:"has_wscale"`
	Timestamp bool   `json:"timestamp"`
	SACKPerm  bool   `json:"sack_perm"`
}

func toRuleJSON(r packet.Rule) ruleJSON {
	return ruleJSON{MSS: r.MSS, WScale: r.WScale, HasMSS: r.HasMSS, HasWScale: r.HasWScale,
		Timestamp: r.Timestamp, SACKPerm: r.SACKPerm}
}

func (j ruleJSON) rule() packet.Rule {
	return packet.Rule{MSS: j.MSS, WScale: j.WScale, HasMSS: j.HasMSS, HasWScale: j.HasWScale,
		Timestamp: j.Timestamp, SACKPerm: j.SACKPerm}
}

// The JSON methods of Config and Header write and read the Rule field as
// ruleJSON; a field of the outer struct hides the embedded one of the same
// JSON name.

// MarshalJSON writes c with its rule as ruleJSON.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Rule ruleJSON `json:"rule"`
	}{plain(c), toRuleJSON(c.Rule)})
}

// UnmarshalJSON reads c with its rule as ruleJSON.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	v := struct {
		*plain
		Rule ruleJSON `json:"rule"`
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	c.Rule = v.Rule.rule()
	return nil
}

// MarshalJSON writes h with its rule as ruleJSON.
func (h Header) MarshalJSON() ([]byte, error) {
	type plain Header
	return json.Marshal(struct {
		plain
		Rule ruleJSON `json:"rule"`
	}{plain(h), toRuleJSON(h.Rule)})
}

// UnmarshalJSON reads h with its rule as ruleJSON.
func (h *Header) UnmarshalJSON(b []byte) error {
	type plain Header
	v := struct {
		*plain
		Rule ruleJSON `json:"rule"`
	}{plain: (*plain)(h)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	h.Rule = v.Rule.rule()
	return nil
}
