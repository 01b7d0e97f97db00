package cookie

import "strconv"

// Profile names a cookie layout: what the 32 bits of a SYN-ACK's ISN carry.
type Profile uint8

const (
	// ProfileLinux is the kernel's layout (see the package documentation):
	// an 8-bit slot, a 2-bit MSS index under a 24-bit hash, window scale,
	// SACK and ECN in the timestamp. Its cookies are the kernel's, bit for bit.
	ProfileLinux Profile = iota
	// ProfileFull keeps every SYN option in the ISN (see "The full
	// profile" in the package documentation), so a client that sends no
	// timestamps keeps window scaling and SACK.
	ProfileFull
)

// Profiles lists the profiles in the order of their values.
var Profiles = [...]Profile{ProfileLinux, ProfileFull}

// String returns the profile's name: "linux" or "full".
func (p Profile) String() string {
	switch p {
	case ProfileLinux:
		return "linux"
	case ProfileFull:
		return "full"
	}
	return "profile(" + strconv.Itoa(int(p)) + ")"
}

// ParseProfile returns the profile named s ("linux" or "full").
func ParseProfile(s string) (Profile, error) {
	for _, p := range Profiles {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, &ProfileError{Name: s}
}

// ProfileError reports an unknown profile name.
type ProfileError struct {
	Name string
}

func (e *ProfileError) Error() string {
	return "cookie: unknown profile " + strconv.Quote(e.Name) + " (want linux or full)"
}
