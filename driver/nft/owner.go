package nft

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// Table ownership.
//
// Every table Install creates holds a regular chain, ownerChain, whose one
// rule carries a comment naming its owner: "synproxy-lite pid P start S",
// the process and its start time (clock ticks after boot, from
// /proc/P/stat, so that a reused pid is not mistaken for the owner). nft
// list ruleset shows it:
//
//	chain owner {
//		comment "synproxy-lite pid 4242 start 981234"
//	}
//
// A table without that mark was not made by synproxy-lite: Install and
// Remove leave it alone (ErrNotOwned). A table whose owner still runs
// belongs to another instance: they leave it alone too (ErrInUse), except
// for the process's own table and, in a graceful restart, its parent's
// (Config.Inherit). A table whose owner is gone is stale: Install replaces
// it in the transaction that adds the new one.

var (
	// ErrNotOwned is returned by Install and Remove for a table that
	// synproxy-lite did not create (it carries no owner mark), such as a
	// host firewall's inet filter. The table is left as it is.
	ErrNotOwned = errors.New("nft: table not created by synproxy-lite")
	// ErrInUse is returned by Install and Remove for a table that a
	// running synproxy-lite process (not this one) created.
	ErrInUse = errors.New("nft: table in use by another synproxy-lite process")
	// ErrNoTable is returned by TableOwner when the table does not exist.
	ErrNoTable = errors.New("nft: no such table")
)

const (
	ownerChain = "owner"
	ownerTag   = "synproxy-lite"
)

// Owner identifies the process that created a table.
type Owner struct {
	// PID is the process id (in the host's pid namespace, or the one the
	// daemon runs in).
	PID int
	// Start is the process's start time in clock ticks after boot; zero
	// when it could not be read.
	Start uint64
}

// String returns the owner mark a table carries.
func (o Owner) String() string {
	return fmt.Sprintf("%s pid %d start %d", ownerTag, o.PID, o.Start)
}

// parseOwner reads an owner mark.
func parseOwner(s string) (Owner, bool) {
	var o Owner
	n, err := fmt.Sscanf(s, ownerTag+" pid %d start %d", &o.PID, &o.Start)
	return o, err == nil && n == 2 && o.PID > 0
}

// ProcessOwner returns the Owner of process pid; its Start is zero when
// the process does not exist.
func ProcessOwner(pid int) Owner {
	o := Owner{PID: pid}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return o
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 {
		f := strings.Fields(string(b[i+1:]))
		// Fields after the name start at field 3; starttime is field 22.
		if len(f) > 19 {
			o.Start, _ = strconv.ParseUint(f[19], 10, 64)
		}
	}
	return o
}

// Self returns the Owner of this process.
func Self() Owner { return ProcessOwner(os.Getpid()) }

// Alive reports whether the owner process still runs.
func (o Owner) Alive() bool {
	cur := ProcessOwner(o.PID)
	return cur.Start != 0 && cur.Start == o.Start
}

func (c *Config) ownerOrSelf() Owner {
	if c.owner.PID != 0 {
		return c.owner
	}
	return Self()
}

// ownerRule is the rule of ownerChain: no expressions, a comment (nftnl
// rule userdata, attribute 0: the string with its NUL).
func ownerUserData(o Owner) []byte {
	s := o.String()
	return append([]byte{0, byte(len(s) + 1)}, append([]byte(s), 0)...)
}

func ownerFromUserData(b []byte) (Owner, bool) {
	for len(b) >= 2 {
		typ, n := b[0], int(b[1])
		if len(b) < 2+n {
			break
		}
		if typ == 0 {
			return parseOwner(strings.TrimRight(string(b[2:2+n]), "\x00"))
		}
		b = b[2+n:]
	}
	return Owner{}, false
}

// tableOwner reads the owner mark of the table; ErrNoTable when it does
// not exist, ErrNotOwned when it has no mark.
func (c *Config) tableOwner(cc *nftables.Conn) (Owner, error) {
	t, err := cc.ListTableOfFamily(c.table(), nftables.TableFamilyINet)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return Owner{}, ErrNoTable
		}
		return Owner{}, driver.NewOpError("list nft table "+c.table(), err)
	}
	rules, err := cc.GetRules(t, &nftables.Chain{Name: ownerChain, Table: t})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return Owner{}, driver.NewOpError("list nft chain "+ownerChain, err)
	}
	for _, r := range rules {
		if o, ok := ownerFromUserData(r.UserData); ok {
			return o, nil
		}
	}
	return Owner{}, fmt.Errorf("%w: inet %s exists and carries no owner mark; it is left as it is", ErrNotOwned, c.table())
}

// TableOwner returns the owner of cfg's table: ErrNoTable when it does not
// exist, ErrNotOwned when synproxy-lite did not create it.
func TableOwner(cfg *Config) (Owner, error) {
	cc, err := cfg.conn()
	if err != nil {
		return Owner{}, err
	}
	return cfg.tableOwner(cc)
}

// mayReplace reports whether the table exists and may be replaced or
// deleted by this process: it is its own, its parent's in a graceful
// restart (Inherit), or its owner is gone. It returns ErrNotOwned or
// ErrInUse otherwise.
func (c *Config) mayReplace(cc *nftables.Conn) (exists bool, err error) {
	o, err := c.tableOwner(cc)
	switch {
	case errors.Is(err, ErrNoTable):
		return false, nil
	case err != nil:
		return true, err
	case o == c.ownerOrSelf(), c.Inherit != 0 && o.PID == c.Inherit, !o.Alive():
		return true, nil
	}
	return true, fmt.Errorf("%w: inet %s belongs to the running process %d", ErrInUse, c.table(), o.PID)
}

// addOwner adds ownerChain and its marked rule to t.
func (c *Config) addOwner(cc *nftables.Conn, t *nftables.Table) {
	ch := cc.AddChain(&nftables.Chain{Name: ownerChain, Table: t})
	cc.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{}, UserData: ownerUserData(c.ownerOrSelf())})
}
