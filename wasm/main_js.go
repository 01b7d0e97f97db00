//go:build js && wasm

package main

import (
	"errors"
	"math"
	"strconv"
	"syscall/js"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/wasm/explain"
)

func main() {
	ctor := js.FuncOf(newExplainer)
	js.Global().Set("newExplainer", ctor)
	if ready := js.Global().Get("onExplainerReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
	select {} // serve calls from the page for as long as it lives
}

// method is an API method: its arguments already type-checked by the
// wrapper, its result marshalled to a JavaScript object.
type method struct {
	args []js.Type
	call func(args []js.Value) (js.Value, error)
}

// methods is the API object's methods, in a table rather than one call
// each: every call site costs the WebAssembly binary some hundred bytes.
var methods = []struct {
	name string
	m    method
}{
	{"defaults", method{call: func([]js.Value) (js.Value, error) {
		d := explain.Default()
		return inputJS(&d), nil
	}}},
	{"floodDefaults", method{call: func([]js.Value) (js.Value, error) {
		c := explain.DefaultFlood()
		return floodConfigJS(&c), nil
	}}},
	{"scenario", method{args: []js.Type{js.TypeObject}, call: func(a []js.Value) (js.Value, error) {
		var in explain.Input
		if err := decodeInput(a[0], &in); err != nil {
			return js.Value{}, err
		}
		s, err := explain.Build(in)
		if err != nil {
			return js.Value{}, err
		}
		return scenarioJS(s), nil
	}}},
	{"claims", method{args: []js.Type{js.TypeObject}, call: func(a []js.Value) (js.Value, error) {
		var in explain.Input
		if err := decodeInput(a[0], &in); err != nil {
			return js.Value{}, err
		}
		cs, err := explain.Claims(in)
		if err != nil {
			return js.Value{}, err
		}
		return claimsJS(cs), nil
	}}},
	{"forge", method{args: []js.Type{js.TypeObject, js.TypeNumber, js.TypeBoolean, js.TypeNumber}, call: func(a []js.Value) (js.Value, error) {
		var in explain.Input
		if err := decodeInput(a[0], &in); err != nil {
			return js.Value{}, err
		}
		tries, err := uintArg(a[1], "tries")
		if err != nil {
			return js.Value{}, err
		}
		seed, err := uintArg(a[3], "seed")
		if err != nil {
			return js.Value{}, err
		}
		f, err := explain.Forge(in, tries, a[2].Bool(), seed)
		if err != nil {
			return js.Value{}, err
		}
		return forgeJS(f), nil
	}}},
	{"search", method{args: []js.Type{js.TypeObject}, call: func(a []js.Value) (js.Value, error) {
		var in explain.Input
		if err := decodeInput(a[0], &in); err != nil {
			return js.Value{}, err
		}
		e, err := explain.Search(in)
		if err != nil {
			return js.Value{}, err
		}
		return searchJS(e), nil
	}}},
	{"flood", method{args: []js.Type{js.TypeObject}, call: func(a []js.Value) (js.Value, error) {
		var cfg explain.FloodConfig
		if err := decodeFlood(a[0], &cfg); err != nil {
			return js.Value{}, err
		}
		r, err := explain.Flood(cfg)
		if err != nil {
			return js.Value{}, err
		}
		return floodJS(r), nil
	}}},
	{"randomKey", method{call: func([]js.Value) (js.Value, error) {
		k, err := cookie.GenerateKey()
		if err != nil {
			return js.Value{}, err
		}
		b := k.Bytes()
		const digits = "0123456789abcdef"
		s := make([]byte, 0, 2*len(b))
		for _, x := range b {
			s = append(s, digits[x>>4], digits[x&15])
		}
		o := js.Global().Get("Object").New()
		o.Set("key", string(s))
		return o, nil
	}}},
	{"wallSlot", method{call: func([]js.Value) (js.Value, error) {
		// The browser's clock, as cookie.WallSlot reads the system's: Unix
		// seconds / 60. Package time stays out of the binary (its
		// initialisation alone is about 230 KB).
		sec := int64(math.Floor(js.Global().Get("Date").Call("now").Float() / 1000))
		slot, second := sec/60, sec%60
		if second < 0 {
			slot, second = slot-1, second+60
		}
		o := js.Global().Get("Object").New()
		o.Set("slot", uint32(slot))
		o.Set("second", uint32(second))
		return o, nil
	}}},
}

func newExplainer(js.Value, []js.Value) any {
	api := js.Global().Get("Object").New()
	funcs := make([]js.Func, len(methods))
	for i := range methods {
		name, m := methods[i].name, methods[i].m
		funcs[i] = js.FuncOf(func(_ js.Value, args []js.Value) any { return invoke(name, m, args) })
		api.Set(name, funcs[i])
	}
	var release js.Func
	release = js.FuncOf(func(js.Value, []js.Value) any {
		// Remove the methods first, so the page cannot call a released function.
		for i := range methods {
			api.Delete(methods[i].name)
		}
		for _, f := range funcs {
			f.Release()
		}
		funcs = nil
		api.Delete("release")
		release.Release()
		return nil
	})
	api.Set("release", release)
	return api
}

// invoke checks the arguments of a call, runs it, and turns its result or
// its error (or a panic) into a JavaScript object.
func invoke(name string, m method, args []js.Value) (ret any) {
	defer func() {
		if r := recover(); r != nil {
			msg := "internal error"
			switch v := r.(type) {
			case error:
				msg = v.Error()
			case string:
				msg = v
			}
			ret = errorObject(name + ": panic: " + msg)
		}
	}()
	if len(args) != len(m.args) {
		return errorObject(name + ": want " + strconv.Itoa(len(m.args)) + " arguments, got " + strconv.Itoa(len(args)))
	}
	for i, t := range m.args {
		if args[i].Type() != t {
			return errorObject(name + ": argument " + strconv.Itoa(i+1) + " must be of type " + t.String() + ", not " + args[i].Type().String())
		}
	}
	res, err := m.call(args)
	if err != nil {
		return errorObject(err.Error())
	}
	return res
}

func errorObject(msg string) js.Value {
	o := js.Global().Get("Object").New()
	o.Set("error", msg)
	return o
}

func uintArg(v js.Value, name string) (uint64, error) {
	f := v.Float()
	if f < 0 || f != float64(uint64(f)) || f > 1<<53 {
		return 0, errors.New("explain: " + name + " must be a non-negative integer")
	}
	return uint64(f), nil
}
