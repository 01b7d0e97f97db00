//go:build js && wasm

package main

import (
	"errors"
	"reflect"
	"strconv"
	"syscall/js"
	"time"

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
	call func(args []js.Value) (any, error)
}

func newExplainer(js.Value, []js.Value) any {
	api := js.Global().Get("Object").New()
	var funcs []js.Func
	var names []string
	add := func(name string, m method) {
		f := js.FuncOf(func(_ js.Value, args []js.Value) any { return invoke(name, m, args) })
		funcs = append(funcs, f)
		names = append(names, name)
		api.Set(name, f)
	}
	add("defaults", method{call: func([]js.Value) (any, error) { return explain.Default(), nil }})
	add("floodDefaults", method{call: func([]js.Value) (any, error) { return explain.DefaultFlood(), nil }})
	add("scenario", method{args: []js.Type{js.TypeObject}, call: func(a []js.Value) (any, error) {
		var in explain.Input
		if err := decode(a[0], &in); err != nil {
			return nil, err
		}
		return explain.Build(in)
	}})
	add("claims", method{args: []js.Type{js.TypeObject}, call: func(a []js.Value) (any, error) {
		var in explain.Input
		if err := decode(a[0], &in); err != nil {
			return nil, err
		}
		return explain.Claims(in)
	}})
	add("forge", method{args: []js.Type{js.TypeObject, js.TypeNumber, js.TypeBoolean, js.TypeNumber}, call: func(a []js.Value) (any, error) {
		var in explain.Input
		if err := decode(a[0], &in); err != nil {
			return nil, err
		}
		tries, err := uintArg(a[1], "tries")
		if err != nil {
			return nil, err
		}
		seed, err := uintArg(a[3], "seed")
		if err != nil {
			return nil, err
		}
		return explain.Forge(in, tries, a[2].Bool(), seed)
	}})
	add("search", method{args: []js.Type{js.TypeObject}, call: func(a []js.Value) (any, error) {
		var in explain.Input
		if err := decode(a[0], &in); err != nil {
			return nil, err
		}
		return explain.Search(in)
	}})
	add("flood", method{args: []js.Type{js.TypeObject}, call: func(a []js.Value) (any, error) {
		var cfg explain.FloodConfig
		if err := decode(a[0], &cfg); err != nil {
			return nil, err
		}
		return explain.Flood(cfg)
	}})
	add("randomKey", method{call: func([]js.Value) (any, error) {
		k, err := cookie.GenerateKey()
		if err != nil {
			return nil, err
		}
		b := k.Bytes()
		const digits = "0123456789abcdef"
		s := make([]byte, 0, 2*len(b))
		for _, x := range b {
			s = append(s, digits[x>>4], digits[x&15])
		}
		return map[string]string{"key": string(s)}, nil
	}})
	add("wallSlot", method{call: func([]js.Value) (any, error) {
		now := time.Now()
		return map[string]uint32{"slot": cookie.WallSlot(now), "second": uint32(now.Unix() % 60)}, nil
	}})
	var release js.Func
	release = js.FuncOf(func(js.Value, []js.Value) any {
		// Remove the methods first, so the page cannot call a released function.
		for _, n := range names {
			api.Delete(n)
		}
		for _, f := range funcs {
			f.Release()
		}
		funcs, names = nil, nil
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
	return toJS(reflect.ValueOf(res))
}

func errorObject(msg string) js.Value {
	o := js.Global().Get("Object").New()
	o.Set("error", msg)
	return o
}

// decode fills the struct v points to from a JavaScript object, checking
// the type of every property and refusing unknown ones.
func decode(o js.Value, v any) error { return fromJS(o, v) }

func uintArg(v js.Value, name string) (uint64, error) {
	f := v.Float()
	if f < 0 || f != float64(uint64(f)) || f > 1<<53 {
		return 0, errors.New("explain: " + name + " must be a non-negative integer")
	}
	return uint64(f), nil
}
