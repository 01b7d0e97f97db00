package parity

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// Config is what the host tells the guest (the file /parity.json in the
// initramfs).
type Config struct {
	Samples   int         `json:"samples"`    // SYNs to send in total (both families)
	Seed      int64       `json:"seed"`       // random stream seed
	Acks      int         `json:"acks"`       // ACK-direction probes per family
	Rule      packet.Rule `json:"rule"`       // the synproxy statement (ruleJSON)
	Batch     int         `json:"batch"`      // SYNs in flight per batch
	WaitMs    int         `json:"wait_ms"`    // how long to wait for a batch's SYN-ACKs
	CrossSlot bool        `json:"cross_slot"` // send half the SYNs after the next slot boundary
	Families  []int       `json:"families"`   // 4 and/or 6
	HZ        uint32      `json:"hz"`         // CONFIG_HZ of the kernel
}

// Header describes a stream or corpus: which kernel, which key.
type Header struct {
	Kernel   string      `json:"kernel"`  // uname -r
	Package  string      `json:"package"` // Debian package and version
	Version  string      `json:"version"`
	Uname    string      `json:"uname"` // /proc/version
	HZ       uint32      `json:"hz"`
	Key4     string      `json:"key4"` // syncookie_secret, 64 hex digits
	Key6     string      `json:"key6"` // syncookie6_secret
	Rule     packet.Rule `json:"rule"` // ruleJSON
	Seed     int64       `json:"seed"`
	TTL      uint8       `json:"ttl"`
	HopLimit uint8       `json:"hop_limit"`
}

// AckProbe is one ACK built from a cookie we minted, with the kernel's verdict.
type AckProbe struct {
	Client        string `json:"client"`
	Server        string `json:"server"`
	SSeq          uint32 `json:"sseq"`
	Cookie        uint32 `json:"cookie"`
	MSS           uint16 `json:"mss"`
	Count         uint32 `json:"count"` // slot the cookie was minted for
	Kind          string `json:"kind"`  // valid, age1, flipbit, stale, future
	TSecr         uint32 `json:"tsecr,omitempty"`
	TS            bool   `json:"ts,omitempty"`
	JiffiesBefore uint64 `json:"jb"`
	JiffiesAfter  uint64 `json:"ja"`
	Accepted      bool   `json:"accepted"`  // cookie_valid rose
	Rejected      bool   `json:"rejected"`  // cookie_invalid rose
	Connected     bool   `json:"connected"` // the server accepted the connection
	ServerMSS     int    `json:"server_mss,omitempty"`
}

// Summary closes a stream.
type Summary struct {
	Sent       int               `json:"sent"`
	Answered   int               `json:"answered"`
	Unanswered int               `json:"unanswered"`
	Seconds    float64           `json:"seconds"`
	Notes      map[string]string `json:"notes,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// Stream is a parsed channel or corpus.
type Stream struct {
	Header  Header
	Samples []Sample
	Acks    []AckProbe
	Summary *Summary
	Logs    []string
}

// Line prefixes of the stream format: one record per line.
const (
	tagHeader  = "H "
	tagSample  = "S "
	tagAck     = "A "
	tagSummary = "E "
	tagLog     = "L "
)

// Writer writes stream lines.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

func (w *Writer) json(tag string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w.w, "%s%s\n", tag, b)
	return err
}

// Header writes h.
func (w *Writer) Header(h *Header) error { return w.json(tagHeader, h) }

// Ack writes a probe.
func (w *Writer) Ack(a *AckProbe) error { return w.json(tagAck, a) }

// Summary writes s.
func (w *Writer) Summary(s *Summary) error { return w.json(tagSummary, s) }

// Log writes a free-form line.
func (w *Writer) Log(format string, args ...any) error {
	_, err := fmt.Fprintf(w.w, "%s%s\n", tagLog, strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " | "))
	return err
}

// Sample writes s.
func (w *Writer) Sample(s *Sample) error {
	var err error
	w.buf, err = s.AppendBinary(w.buf[:0])
	if err != nil {
		return err
	}
	line := make([]byte, 0, 2+base64.StdEncoding.EncodedLen(len(w.buf))+1)
	line = append(line, tagSample...)
	line = base64.StdEncoding.AppendEncode(line, w.buf)
	line = append(line, '\n')
	_, err = w.w.Write(line)
	return err
}

// ReadStream parses a stream. Lines that are not records (a serial port's
// noise, say) are an error only if they start with a record tag.
func ReadStream(r io.Reader) (*Stream, error) {
	st := &Stream{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		var err error
		switch {
		case strings.HasPrefix(line, tagSample):
			b, derr := base64.StdEncoding.DecodeString(line[2:])
			if derr != nil {
				err = derr
				break
			}
			var s Sample
			if err = s.UnmarshalBinary(b); err == nil {
				st.Samples = append(st.Samples, s)
			}
		case strings.HasPrefix(line, tagAck):
			var a AckProbe
			if err = json.Unmarshal([]byte(line[2:]), &a); err == nil {
				st.Acks = append(st.Acks, a)
			}
		case strings.HasPrefix(line, tagHeader):
			err = json.Unmarshal([]byte(line[2:]), &st.Header)
		case strings.HasPrefix(line, tagSummary):
			st.Summary = &Summary{}
			err = json.Unmarshal([]byte(line[2:]), st.Summary)
		case strings.HasPrefix(line, tagLog):
			st.Logs = append(st.Logs, line[2:])
		}
		if err != nil {
			return st, fmt.Errorf("parity: stream line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("parity: stream: %w", err)
	}
	return st, nil
}

// ReadFile reads a stream file, gunzipping it when its name ends in .gz.
func ReadFile(path string) (*Stream, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r io.Reader = bytes.NewReader(b)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("parity: %s: %w", path, err)
		}
		r = zr
	}
	return ReadStream(r)
}

// Env returns the verification environment a header describes.
func (h *Header) Env() (*Env, error) {
	k4, err := cookieKey(h.Key4)
	if err != nil {
		return nil, fmt.Errorf("parity: key4: %w", err)
	}
	k6, err := cookieKey(h.Key6)
	if err != nil {
		return nil, fmt.Errorf("parity: key6: %w", err)
	}
	return &Env{Key4: k4, Key6: k6, HZ: h.HZ, Rule: h.Rule, TTL: h.TTL, HopLimit: h.HopLimit}, nil
}
