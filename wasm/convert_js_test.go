//go:build js && wasm

package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"syscall/js"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/wasm/explain"
)

// These tests run under Node.js (wasm/site's TestExplainUnderNode runs them):
// GOOS=js GOARCH=wasm go test -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./wasm

// jsonName is the property name encoding/json gives a struct field.
func jsonName(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("json")
	if !f.IsExported() || tag == "-" {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, true
}

var kinds = map[kind][]reflect.Kind{
	kString: {reflect.String}, kBool: {reflect.Bool}, kUint8: {reflect.Uint8}, kUint16: {reflect.Uint16},
	kUint32: {reflect.Uint32}, kUint64: {reflect.Uint64}, kInt32: {reflect.Int32}, kInt: {reflect.Int},
	kFloat64: {reflect.Float64}, kStruct: {reflect.Struct}, kPtr: {reflect.Pointer}, kSlice: {reflect.Slice},
	kArray: {reflect.Array},
}

// checkTable checks that fs describes every json field of t, at its offset,
// with its kind, recursively.
func checkTable(t *testing.T, path string, typ reflect.Type, fs []field) {
	t.Helper()
	want := map[string]reflect.StructField{}
	for i := range typ.NumField() {
		if name, ok := jsonName(typ.Field(i)); ok {
			want[name] = typ.Field(i)
		}
	}
	if len(want) != len(fs) {
		t.Errorf("%s: table has %d fields, %s has %d", path, len(fs), typ, len(want))
	}
	for i := range fs {
		sf, ok := want[fs[i].name]
		if !ok {
			t.Errorf("%s: no field %q in %s", path, fs[i].name, typ)
			continue
		}
		if sf.Offset != fs[i].off {
			t.Errorf("%s.%s: offset %d, want %d", path, fs[i].name, fs[i].off, sf.Offset)
		}
		checkKind(t, path+"."+fs[i].name, sf.Type, &fs[i])
	}
}

func checkKind(t *testing.T, path string, typ reflect.Type, f *field) {
	t.Helper()
	if ks := kinds[f.kind]; len(ks) == 0 || ks[0] != typ.Kind() {
		t.Errorf("%s: table kind %d for Go %s", path, f.kind, typ)
		return
	}
	switch f.kind {
	case kStruct:
		checkTable(t, path, typ, f.fields)
	case kPtr:
		checkTable(t, path, typ.Elem(), f.fields)
	case kSlice, kArray:
		if f.size != typ.Elem().Size() {
			t.Errorf("%s: element size %d, want %d", path, f.size, typ.Elem().Size())
		}
		if f.kind == kArray && f.n != typ.Len() {
			t.Errorf("%s: length %d, want %d", path, f.n, typ.Len())
		}
		checkKind(t, path+"[]", typ.Elem(), f.elem)
	}
}

func TestTablesMatchTypes(t *testing.T) {
	for _, c := range []struct {
		v  any
		fs []field
	}{
		{explain.Input{}, inputFields}, {explain.Scenario{}, scenarioFields}, {explain.Claim{}, claimFields},
		{explain.ForgeResult{}, forgeFields}, {explain.Exhaustive{}, searchFields},
		{explain.FloodConfig{}, floodConfigFields}, {explain.FloodResult{}, floodFields},
		{cookie.TSOptions{}, tsOptionsFields},
	} {
		typ := reflect.TypeOf(c.v)
		checkTable(t, typ.Name(), typ, c.fs)
	}
}

// asJSON returns v as encoding/json writes it, decoded into maps.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// fromJSValue returns the JavaScript value as JSON.stringify writes it,
// decoded into maps.
func fromJSValue(t *testing.T, v js.Value) any {
	t.Helper()
	s := js.Global().Get("JSON").Call("stringify", v).String()
	var out any
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// dropOmitted removes from got the properties want lacks whose value is
// empty: the page always receives every field, encoding/json leaves out the
// omitempty ones.
func dropOmitted(got, want any) {
	switch g := got.(type) {
	case map[string]any:
		w, _ := want.(map[string]any)
		for k, v := range g {
			if _, ok := w[k]; !ok && (v == nil || v == "") {
				delete(g, k)
				continue
			}
			dropOmitted(v, w[k])
		}
	case []any:
		w, _ := want.([]any)
		for i := range g {
			if i < len(w) {
				dropOmitted(g[i], w[i])
			}
		}
	}
}

func TestConversionsMatchJSON(t *testing.T) {
	in := explain.Default()
	scen, err := explain.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	liteIn := in
	liteIn.Handshake = explain.HandshakeLite
	lite, err := explain.Build(liteIn)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := explain.Claims(in)
	if err != nil {
		t.Fatal(err)
	}
	forge, err := explain.Forge(in, 1000, true, 7)
	if err != nil {
		t.Fatal(err)
	}
	cfg := explain.DefaultFlood()
	flood, err := explain.Flood(cfg)
	if err != nil {
		t.Fatal(err)
	}
	search := &explain.Exhaustive{Searched: 1 << 25, Hits: []uint32{1, 0xffffffff}, MSS: []uint16{536, 1460}, Age: []uint32{0, 1}, Space: 1 << 32, Rate: 2.5e-9}
	for _, c := range []struct {
		name string
		v    any
		js   js.Value
	}{
		{"input", in, inputJS(&in)},
		{"scenario", scen, scenarioJS(scen)},
		{"scenario, synproxy-lite", lite, scenarioJS(lite)},
		{"claims", claims, claimsJS(claims)},
		{"nil claims", []explain.Claim(nil), claimsJS(nil)},
		{"forge", forge, forgeJS(forge)},
		{"forge without hits", &explain.ForgeResult{Tries: 3}, forgeJS(&explain.ForgeResult{Tries: 3})},
		{"search", search, searchJS(search)},
		{"flood config", cfg, floodConfigJS(&cfg)},
		{"flood", flood, floodJS(flood)},
	} {
		want := asJSON(t, c.v)
		got := fromJSValue(t, c.js)
		dropOmitted(got, want)
		if !reflect.DeepEqual(got, want) {
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			t.Errorf("%s:\n got %s\nwant %s", c.name, gb, wb)
		}
	}
}

func TestDecodeInput(t *testing.T) {
	want := explain.Input{Client: "192.0.2.1:1", Server: "[2001:db8::1]:443", Key: "k", ClientISN: 1 << 31, MSS: 65535,
		WScale: 14, HasWScale: true, SACK: true, TS: true, ECN: true, Count: 7, SynSecond: 59, AckDelay: 61,
		AckSeqDelta: -5, AckAckDelta: 1 << 30, MsNow: 9, ClientTS: 10, ServerISN: 11, Handshake: explain.HandshakeLite}
	var got explain.Input
	if err := decodeInput(inputJS(&want), &got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("round trip: got %+v, want %+v", got, want)
	}
	cfg := explain.DefaultFlood()
	cfg.Seed, cfg.AttackStart = 1<<53, -3
	var gotCfg explain.FloodConfig
	if err := decodeFlood(floodConfigJS(&cfg), &gotCfg); err != nil {
		t.Fatal(err)
	}
	if gotCfg != cfg {
		t.Errorf("flood round trip: got %+v, want %+v", gotCfg, cfg)
	}

	obj := func(k string, v any) js.Value {
		o := js.Global().Get("Object").New()
		o.Set(k, v)
		return o
	}
	for _, c := range []struct {
		o    js.Value
		want string
	}{
		{obj("bogus", 1), "explain: unknown input bogus"},
		{obj("client", 5), "explain: input client: must be a string, not number"},
		{obj("sack", "yes"), "explain: input sack: must be a boolean, not string"},
		{obj("mss", "1"), "explain: input mss: must be a number, not string"},
		{obj("clientISN", 1.5), "explain: input clientISN: must be a whole number"},
		{obj("clientISN", js.Global().Get("Infinity")), "explain: input clientISN: must be a whole number"},
		{obj("count", 1<<54), "explain: input count: too large for a JavaScript number to hold exactly"},
		{obj("mss", 70000), "explain: input mss: out of range"},
		{obj("wscale", 256), "explain: input wscale: out of range"},
		{obj("msNow", -1), "explain: input msNow: out of range"},
		{obj("ackSeqDelta", 1<<31), "explain: input ackSeqDelta: out of range"},
		{obj("ackSeqDelta", -(1<<31)-1), "explain: input ackSeqDelta: out of range"},
	} {
		var in explain.Input
		err := decodeInput(c.o, &in)
		if err == nil || err.Error() != c.want {
			t.Errorf("decode %s: %v, want %q", js.Global().Get("JSON").Call("stringify", c.o).String(), err, c.want)
		}
	}
	if err := decodeFlood(obj("seed", -1), &gotCfg); err == nil || err.Error() != "explain: input seed: out of range" {
		t.Errorf("negative seed: %v", err)
	}
	if err := decodeFlood(obj("ticks", -(1<<53)), &gotCfg); err != nil {
		t.Errorf("ticks -2^53: %v", err)
	}
}
