//go:build js && wasm

package main

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"syscall/js"
)

// The results and inputs cross into JavaScript through reflection over
// their json tags rather than through encoding/json, which would add about
// 700 KB to the binary (reflect is linked anyway).

// jsonName returns the property name of a struct field and whether it is
// exported to JavaScript.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, true
}

// toJS converts a Go value made of structs, slices, arrays, maps with string
// keys, pointers, strings, booleans and numbers into a JavaScript value.
func toJS(v reflect.Value) js.Value {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return js.Null()
		}
		return toJS(v.Elem())
	case reflect.Struct:
		o := js.Global().Get("Object").New()
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if name, ok := jsonName(t.Field(i)); ok {
				o.Set(name, toJS(v.Field(i)))
			}
		}
		return o
	case reflect.Slice:
		if v.IsNil() {
			return js.Null()
		}
		fallthrough
	case reflect.Array:
		a := js.Global().Get("Array").New(v.Len())
		for i := 0; i < v.Len(); i++ {
			a.SetIndex(i, toJS(v.Index(i)))
		}
		return a
	case reflect.Map:
		o := js.Global().Get("Object").New()
		iter := v.MapRange()
		for iter.Next() {
			o.Set(iter.Key().String(), toJS(iter.Value()))
		}
		return o
	case reflect.String:
		return js.ValueOf(v.String())
	case reflect.Bool:
		return js.ValueOf(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return js.ValueOf(float64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return js.ValueOf(float64(v.Uint()))
	case reflect.Float32, reflect.Float64:
		return js.ValueOf(v.Float())
	}
	return js.Undefined()
}

// fromJS fills the struct that ptr points to from the JavaScript object o:
// each property must name a field and have the field's type (a string,
// a boolean, or an integer number in the field's range); missing
// properties leave their fields alone.
func fromJS(o js.Value, ptr any) error {
	v := reflect.ValueOf(ptr).Elem()
	t := v.Type()
	fields := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		if name, ok := jsonName(t.Field(i)); ok {
			fields[name] = i
		}
	}
	keys := js.Global().Get("Object").Call("keys", o)
	for k := 0; k < keys.Length(); k++ {
		name := keys.Index(k).String()
		i, ok := fields[name]
		if !ok {
			return errors.New("explain: unknown input " + name)
		}
		if err := setField(v.Field(i), o.Get(name)); err != nil {
			return errors.New("explain: input " + name + ": " + err.Error())
		}
	}
	return nil
}

func setField(f reflect.Value, p js.Value) error {
	switch f.Kind() {
	case reflect.String:
		if p.Type() != js.TypeString {
			return errors.New("must be a string, not " + p.Type().String())
		}
		f.SetString(p.String())
	case reflect.Bool:
		if p.Type() != js.TypeBoolean {
			return errors.New("must be a boolean, not " + p.Type().String())
		}
		f.SetBool(p.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x, err := integer(p)
		if err != nil {
			return err
		}
		if f.OverflowInt(int64(x)) || x < math.MinInt64 || x > math.MaxInt64 {
			return errors.New("out of range")
		}
		f.SetInt(int64(x))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		x, err := integer(p)
		if err != nil {
			return err
		}
		if x < 0 || x > math.MaxUint64 || f.OverflowUint(uint64(x)) {
			return errors.New("out of range")
		}
		f.SetUint(uint64(x))
	default:
		return errors.New("unsupported field type " + f.Kind().String())
	}
	return nil
}

func integer(p js.Value) (float64, error) {
	if p.Type() != js.TypeNumber {
		return 0, errors.New("must be a number, not " + p.Type().String())
	}
	x := p.Float()
	if x != math.Trunc(x) || math.IsInf(x, 0) {
		return 0, errors.New("must be a whole number")
	}
	if math.Abs(x) > 1<<53 {
		return 0, errors.New("too large for a JavaScript number to hold exactly")
	}
	return x, nil
}
