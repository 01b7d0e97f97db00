package packet

// TCPFlags are the eight flag bits of a TCP header (byte 13).
type TCPFlags uint8

// TCP flags.
const (
	FlagFIN TCPFlags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

var flagNames = [8]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// String returns the set flags joined by "|" in the order SYN, ACK, FIN,
// RST, PSH, URG, ECE, CWR (so a SYN-ACK reads "SYN|ACK"), or "none".
func (f TCPFlags) String() string {
	if f == 0 {
		return "none"
	}
	var b []byte
	for _, i := range [8]int{1, 4, 0, 2, 3, 5, 6, 7} {
		if f&(1<<i) != 0 {
			if len(b) > 0 {
				b = append(b, '|')
			}
			b = append(b, flagNames[i]...)
		}
	}
	return string(b)
}
