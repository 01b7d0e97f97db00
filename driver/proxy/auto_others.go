//go:build !linux

package proxy

// ChooseDriver picks nfqueue outside Linux, where no driver runs.
func ChooseDriver(iface string, failOpen bool) Choice {
	return Choice{"nfqueue", "not Linux: no driver runs here"}
}
