package engine_test

import (
	"fmt"

	"github.com/synproxy-lite/synproxy-lite/driver/engine"
)

// A policy for engine.Config: cookies only while the SYN rate to the port
// is at 5000 a second or more, at most 50 SYNs a second from one /24 or
// /48, and the daemon's reflection budget.
func ExamplePolicy() {
	mode, err := engine.ParseMode("on-demand")
	if err != nil {
		panic(err)
	}
	p := &engine.Policy{Mode: mode, EngageRate: 5000, SYNRate: 50, Prefix4: 24, Prefix6: 48,
		ReflectRate: engine.DefaultReflectRate}
	fmt.Println(p.Mode, p.SYNRate, p.ReflectRate)
	// Output: on-demand 50 1000
}
