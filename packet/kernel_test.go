package packet_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// The kernel fixtures are SYNs sent to real Linux kernels' nftables synproxy
// (Debian 6.1 and 6.12 booted under qemu by the parity harness in fuzz/) and
// the SYN-ACKs the kernels answered with, taken from the harness's committed
// corpora (fuzz/testdata/parity/*.stream.gz) by `go test -run
// TestKernelSYNACKs -update`. Each pcap holds SYN, SYN-ACK pairs (LINKTYPE_RAW);
// kernel.json says which kernel and which rule.

const kernelSamplesPerCorpus = 400

type kernelFixture struct {
	File     string     `json:"file"`
	Package  string     `json:"package"`
	Version  string     `json:"version"`
	Source   string     `json:"source"`
	Rule     kernelRule `json:"rule"`
	TTL      uint8      `json:"ttl"`
	HopLimit uint8      `json:"hop_limit"`
	Pairs    int        `json:"pairs"`
	// The kernel's secrets and time slots, for checking the cookies
	// (synproxy-lite inspect's tests use them).
	Key4    string `json:"key4"`
	Key6    string `json:"key6"`
	HZ      uint32 `json:"hz"`
	SlotMin uint32 `json:"slot_min"` // jiffies_64/(60·HZ) before the first SYN
	SlotMax uint32 `json:"slot_max"` // and after the last SYN-ACK
}

type kernelPair struct {
	syn, synack                 []byte
	jiffiesBefore, jiffiesAfter uint64
}

// kernelRule is a packet.Rule in the JSON shape of kernel.json and of the
// parity harness's streams (fuzz/parity): the nftables statement's options,
// without the TTL (the fixture's ttl and hop_limit).
type kernelRule struct{ packet.Rule }

type kernelRuleJSON struct {
	MSS       uint16 `json:"mss"`
	WScale    uint8  `json:"wscale"`
	HasMSS    bool   `json:"has_mss"`
	HasWScale bool   `json:"has_wscale"`
	Timestamp bool   `json:"timestamp"`
	SACKPerm  bool   `json:"sack_perm"`
}

func (r kernelRule) MarshalJSON() ([]byte, error) {
	return json.Marshal(kernelRuleJSON{MSS: r.MSS, WScale: r.WScale, HasMSS: r.HasMSS, HasWScale: r.HasWScale,
		Timestamp: r.Timestamp, SACKPerm: r.SACKPerm})
}

func (r *kernelRule) UnmarshalJSON(b []byte) error {
	var j kernelRuleJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	r.Rule = packet.Rule{MSS: j.MSS, WScale: j.WScale, HasMSS: j.HasMSS, HasWScale: j.HasWScale,
		Timestamp: j.Timestamp, SACKPerm: j.SACKPerm}
	return nil
}

// readParityCorpus reads the parity harness's stream format: "H " JSON
// header, "S " base64 sample records (version 1: jiffies and ms clocks, then
// the SYN and SYN-ACK IP packets, each behind a 16-bit length).
func readParityCorpus(t *testing.T, path string) (kernelFixture, []kernelPair) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var fx kernelFixture
	var pairs []kernelPair
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "H "):
			var h struct {
				Key4     string     `json:"key4"`
				Key6     string     `json:"key6"`
				HZ       uint32     `json:"hz"`
				Package  string     `json:"package"`
				Version  string     `json:"version"`
				Rule     kernelRule `json:"rule"`
				TTL      uint8      `json:"ttl"`
				HopLimit uint8      `json:"hop_limit"`
			}
			if err := json.Unmarshal([]byte(line[2:]), &h); err != nil {
				t.Fatal(err)
			}
			fx.Package, fx.Version, fx.Rule, fx.TTL, fx.HopLimit = h.Package, h.Version, h.Rule, h.TTL, h.HopLimit
			fx.Key4, fx.Key6, fx.HZ = h.Key4, h.Key6, h.HZ
		case strings.HasPrefix(line, "S "):
			b, err := base64.StdEncoding.DecodeString(line[2:])
			if err != nil || len(b) < 27 || b[0] != 1 {
				t.Fatalf("%s: bad sample record", path)
			}
			jb, ja := binary.BigEndian.Uint64(b[1:]), binary.BigEndian.Uint64(b[9:])
			b = b[25:]
			n := int(binary.BigEndian.Uint16(b))
			syn := b[2 : 2+n]
			b = b[2+n:]
			m := int(binary.BigEndian.Uint16(b))
			synack := b[2 : 2+m]
			pairs = append(pairs, kernelPair{syn, synack, jb, ja})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	fx.Source = "fuzz/testdata/parity/" + filepath.Base(path)
	return fx, pairs
}

func updateKernelFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "fuzz", "testdata", "parity", "*.stream.gz"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no parity corpora to take kernel samples from: %v", err)
	}
	var index []kernelFixture
	for _, f := range files {
		fx, pairs := readParityCorpus(t, f)
		if len(pairs) > kernelSamplesPerCorpus {
			pairs = pairs[:kernelSamplesPerCorpus]
		}
		var frames [][]byte
		for _, p := range pairs {
			frames = append(frames, p.syn, p.synack)
		}
		fx.SlotMin = cookie.KernelSlot(pairs[0].jiffiesBefore, fx.HZ)
		fx.SlotMax = cookie.KernelSlot(pairs[len(pairs)-1].jiffiesAfter, fx.HZ)
		fx.File = "kernel-" + strings.NewReplacer("~", "_", "+", "_").Replace(fx.Version) + ".pcap"
		fx.Pairs = len(pairs)
		writePcap(t, fx.File, layers.LinkTypeRaw, frames)
		index = append(index, fx)
	}
	b, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "kernel.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKernelSYNACKs rebuilds every SYN-ACK a real kernel's nftables synproxy
// sent, from the SYN it answered, the rule, and the two values that depend on
// the kernel's key and clock (the ISN and the TSval, taken from the kernel's
// packet): the bytes must be identical. The TSval's low six bits must be the
// option bits Offer computes.
func TestKernelSYNACKs(t *testing.T) {
	if *update {
		updateKernelFixtures(t)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "kernel.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index []kernelFixture
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatal(err)
	}
	if len(index) < 2 {
		t.Fatalf("want fixtures of two kernels, have %d", len(index))
	}
	for _, fx := range index {
		t.Run(fx.Version, func(t *testing.T) {
			lt, frames := readPcap(t, fx.File)
			if lt != layers.LinkTypeRaw || len(frames) != 2*fx.Pairs || fx.Pairs < 100 {
				t.Fatalf("%s: link type %v, %d frames for %d pairs", fx.File, lt, len(frames), fx.Pairs)
			}
			counts := map[string]int{}
			var syn, ka packet.Packet
			var buf []byte
			for i := 0; i < len(frames); i += 2 {
				if err := syn.Decode(frames[i].data, packet.LinkIP); err != nil {
					t.Fatalf("pair %d: SYN: %v", i/2, err)
				}
				if err := ka.Decode(frames[i+1].data, packet.LinkIP); err != nil {
					t.Fatalf("pair %d: kernel SYN-ACK: %v", i/2, err)
				}
				if err := syn.VerifyChecksums(); err != nil {
					t.Fatalf("pair %d: SYN: %v", i/2, err)
				}
				// The kernel leaves the TCP checksum to offload: the capture
				// holds the pseudo-header sum only.
				if !ka.PartialTCPChecksum() {
					t.Fatalf("pair %d: kernel SYN-ACK's TCP checksum %#04x is not the pseudo-header sum", i/2, ka.TCPChecksum)
				}
				r := fx.Rule.Rule
				r.TTL = fx.TTL
				if syn.Is6() {
					r.TTL = fx.HopLimit
				}
				o := r.Offer(&syn)
				if o.Options.HasTS != ka.Options.HasTS {
					t.Fatalf("pair %d: timestamp offered %v, kernel %v", i/2, o.Options.HasTS, ka.Options.HasTS)
				}
				if o.Options.HasTS {
					// The clock part is the kernel's; the option bits must be ours.
					want := cookie.TSval(ka.Options.TSval, cookie.TSOptions(o.TS))
					if want != ka.Options.TSval {
						t.Fatalf("pair %d: kernel TSval %#08x, our option bits give %#08x (%+v)", i/2, ka.Options.TSval, want, o.TS)
					}
					o.Options.TSval = ka.Options.TSval
				}
				s := packet.SYNACK(&syn, ka.Seq, &o)
				s.PartialChecksum = true
				buf, err = packet.AppendReply(buf[:0], &syn, &s)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf, frames[i+1].data) {
					t.Fatalf("pair %d: SYN-ACK differs from the kernel's\nSYN    %x\nkernel %x\nours   %x", i/2, syn.Bytes(), frames[i+1].data, buf)
				}
				// With the full checksum: the same but for the checksum
				// field, which verifies.
				buf, err = packet.AppendSYNACK(buf[:0], &syn, ka.Seq, &o)
				if err != nil {
					t.Fatal(err)
				}
				var ours packet.Packet
				if err := ours.Decode(buf, packet.LinkIP); err != nil {
					t.Fatal(err)
				}
				if err := ours.VerifyChecksums(); err != nil {
					t.Fatalf("pair %d: %v", i/2, err)
				}
				full := append([]byte(nil), frames[i+1].data...)
				binary.BigEndian.PutUint16(full[ka.TCPOffset+16:], ours.TCPChecksum)
				if !bytes.Equal(buf, full) {
					t.Fatalf("pair %d: full-checksum SYN-ACK differs beyond the checksum field", i/2)
				}
				counts[shapeName(&syn)]++
			}
			t.Logf("%s: %d SYN-ACKs byte-identical, %d SYN shapes", fx.Package, fx.Pairs, len(counts))
			if len(counts) < 4 {
				t.Errorf("only %d kinds of SYN in the fixture: %v", len(counts), counts)
			}
		})
	}
}

func shapeName(p *packet.Packet) string {
	var s []string
	if p.Is6() {
		s = append(s, "v6")
	} else {
		s = append(s, "v4")
	}
	o := &p.Options
	if o.HasMSS {
		s = append(s, "mss")
	}
	if o.HasTS {
		s = append(s, "ts")
	}
	if o.SACKPermitted {
		s = append(s, "sack")
	}
	if o.HasWScale {
		s = append(s, "ws")
	}
	if p.Flags&(packet.FlagECE|packet.FlagCWR) != 0 {
		s = append(s, "ecn")
	}
	return strings.Join(s, "+")
}
