package kernel

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// File is one entry of an initramfs.
type File struct {
	Name string // path without leading slash
	Mode uint32 // full st_mode: type bits and permissions
	Data []byte
	Rdev [2]uint32 // major, minor for device nodes
}

// Mode bits used in initramfs entries.
const (
	ModeDir  = 0o040000
	ModeFile = 0o100000
	ModeChr  = 0o020000
)

// WriteInitramfs writes files as an uncompressed newc cpio archive, adding
// parent directories that are not listed.
func WriteInitramfs(w io.Writer, files []File) error {
	have := map[string]bool{}
	var all []File
	var addDir func(d string)
	addDir = func(d string) {
		if d == "." || d == "/" || d == "" || have[d] {
			return
		}
		addDir(path.Dir(d))
		have[d] = true
		all = append(all, File{Name: d, Mode: ModeDir | 0o755})
	}
	for _, f := range files {
		f.Name = strings.TrimPrefix(f.Name, "/")
		addDir(path.Dir(f.Name))
		if f.Mode&0o170000 == ModeDir {
			addDir(f.Name)
			continue
		}
		have[f.Name] = true
		all = append(all, f)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	all = append(all, File{Name: "TRAILER!!!"})
	for i, f := range all {
		if err := writeEntry(w, uint32(i+1), f); err != nil {
			return err
		}
	}
	return nil
}

func writeEntry(w io.Writer, ino uint32, f File) error {
	nlink := 1
	if f.Mode&0o170000 == ModeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, f.Mode, 0, 0, nlink, 0, len(f.Data), 0, 0, f.Rdev[0], f.Rdev[1], len(f.Name)+1, 0)
	buf := make([]byte, 0, len(hdr)+len(f.Name)+8)
	buf = append(buf, hdr...)
	buf = append(buf, f.Name...)
	buf = append(buf, 0)
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("kernel: initramfs: %w", err)
	}
	if len(f.Data) > 0 {
		if _, err := w.Write(f.Data); err != nil {
			return fmt.Errorf("kernel: initramfs: %w", err)
		}
		if pad := (4 - len(f.Data)%4) % 4; pad > 0 {
			if _, err := w.Write(make([]byte, pad)); err != nil {
				return fmt.Errorf("kernel: initramfs: %w", err)
			}
		}
	}
	return nil
}
