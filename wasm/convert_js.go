//go:build js && wasm

package main

import (
	"errors"
	"math"
	"syscall/js"
	"unsafe"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/wasm/explain"
)

// The results and inputs cross into JavaScript through a table per type:
// each field's property name (its json tag), its kind and its offset in the
// struct. One small loop walks the tables. encoding/json would add about
// 700 KB to the binary, reflection about 80 KB (its code, strconv's quoting
// and every type's metadata), and hand-written conversions about 60 KB
// (the Go WebAssembly backend spends some 300 bytes on every call site).
// convert_js_test.go checks every table against its type with reflection
// and every conversion against encoding/json, under Node.js.

// kind is how a field is stored in Go and shown in JavaScript.
type kind uint8

const (
	kString kind = iota
	kBool
	kUint8
	kUint16
	kUint32
	kUint64
	kInt32
	kInt
	kFloat64
	kStruct // a struct value: fields
	kPtr    // a pointer to a struct (fields), null when nil
	kSlice  // a slice of elem, null when nil
	kArray  // an array of n elem
)

// field is one struct field (or, with off 0, one slice or array element).
type field struct {
	name   string
	kind   kind
	off    uintptr
	fields []field // kStruct, kPtr
	elem   *field  // kSlice, kArray
	size   uintptr // kSlice, kArray: the element's size
	n      int     // kArray: its length
}

// Constructors of the tables, so that each row reads like the struct.

func f(name string, k kind, off uintptr) field { return field{name: name, kind: k, off: off} }

func fStruct(name string, off uintptr, fs []field) field {
	return field{name: name, kind: kStruct, off: off, fields: fs}
}

func fPtr(name string, off uintptr, fs []field) field {
	return field{name: name, kind: kPtr, off: off, fields: fs}
}

func fSlice(name string, off uintptr, elem field, size uintptr) field {
	return field{name: name, kind: kSlice, off: off, elem: &elem, size: size}
}

var (
	inputFields = []field{
		f("client", kString, unsafe.Offsetof(explain.Input{}.Client)),
		f("server", kString, unsafe.Offsetof(explain.Input{}.Server)),
		f("key", kString, unsafe.Offsetof(explain.Input{}.Key)),
		f("clientISN", kUint32, unsafe.Offsetof(explain.Input{}.ClientISN)),
		f("mss", kUint16, unsafe.Offsetof(explain.Input{}.MSS)),
		f("wscale", kUint8, unsafe.Offsetof(explain.Input{}.WScale)),
		f("hasWScale", kBool, unsafe.Offsetof(explain.Input{}.HasWScale)),
		f("sack", kBool, unsafe.Offsetof(explain.Input{}.SACK)),
		f("ts", kBool, unsafe.Offsetof(explain.Input{}.TS)),
		f("ecn", kBool, unsafe.Offsetof(explain.Input{}.ECN)),
		f("count", kUint32, unsafe.Offsetof(explain.Input{}.Count)),
		f("synSecond", kUint32, unsafe.Offsetof(explain.Input{}.SynSecond)),
		f("ackDelay", kUint32, unsafe.Offsetof(explain.Input{}.AckDelay)),
		f("ackSeqDelta", kInt32, unsafe.Offsetof(explain.Input{}.AckSeqDelta)),
		f("ackAckDelta", kInt32, unsafe.Offsetof(explain.Input{}.AckAckDelta)),
		f("msNow", kUint32, unsafe.Offsetof(explain.Input{}.MsNow)),
		f("clientTS", kUint32, unsafe.Offsetof(explain.Input{}.ClientTS)),
		f("serverISN", kUint32, unsafe.Offsetof(explain.Input{}.ServerISN)),
		f("handshake", kString, unsafe.Offsetof(explain.Input{}.Handshake)),
	}
	rowFields = []field{
		f("op", kString, unsafe.Offsetof(explain.Row{}.Op)),
		f("label", kString, unsafe.Offsetof(explain.Row{}.Label)),
		f("value", kUint32, unsafe.Offsetof(explain.Row{}.Value)),
		f("hex", kString, unsafe.Offsetof(explain.Row{}.Hex)),
		f("bits", kString, unsafe.Offsetof(explain.Row{}.Bits)),
		f("note", kString, unsafe.Offsetof(explain.Row{}.Note)),
	}
	rowElem        = field{kind: kStruct, fields: rowFields}
	stringElem     = field{kind: kString}
	uint16Elem     = field{kind: kUint16}
	uint32Elem     = field{kind: kUint32}
	sizeRow        = unsafe.Sizeof(explain.Row{})
	sizeString     = unsafe.Sizeof("")
	encodingFields = []field{
		f("h0", kUint32, unsafe.Offsetof(explain.Encoding{}.H0)),
		f("h1", kUint32, unsafe.Offsetof(explain.Encoding{}.H1)),
		f("clientSeq", kUint32, unsafe.Offsetof(explain.Encoding{}.ClientSeq)),
		f("count", kUint32, unsafe.Offsetof(explain.Encoding{}.Count)),
		f("mssIn", kUint16, unsafe.Offsetof(explain.Encoding{}.MSSIn)),
		f("index", kUint8, unsafe.Offsetof(explain.Encoding{}.Index)),
		f("mss", kUint16, unsafe.Offsetof(explain.Encoding{}.MSS)),
		{name: "table", kind: kArray, off: unsafe.Offsetof(explain.Encoding{}.Table), elem: &uint16Elem, size: 2, n: 4},
		fSlice("rows", unsafe.Offsetof(explain.Encoding{}.Rows), rowElem, sizeRow),
		fStruct("layout", unsafe.Offsetof(explain.Encoding{}.Layout), rowFields),
		f("isn", kUint32, unsafe.Offsetof(explain.Encoding{}.ISN)),
	}
	checkFields = []field{
		f("ackSeq", kUint32, unsafe.Offsetof(explain.CheckTrace{}.AckSeq)),
		f("ackAck", kUint32, unsafe.Offsetof(explain.CheckTrace{}.AckAck)),
		f("cookie", kUint32, unsafe.Offsetof(explain.CheckTrace{}.Cookie)),
		f("clientSeq", kUint32, unsafe.Offsetof(explain.CheckTrace{}.ClientSeq)),
		f("count", kUint32, unsafe.Offsetof(explain.CheckTrace{}.Count)),
		f("r", kUint32, unsafe.Offsetof(explain.CheckTrace{}.R)),
		f("slotByte", kUint32, unsafe.Offsetof(explain.CheckTrace{}.SlotByte)),
		f("age", kUint32, unsafe.Offsetof(explain.CheckTrace{}.Age)),
		f("h1", kUint32, unsafe.Offsetof(explain.CheckTrace{}.H1)),
		f("index", kUint32, unsafe.Offsetof(explain.CheckTrace{}.Index)),
		fSlice("rows", unsafe.Offsetof(explain.CheckTrace{}.Rows), rowElem, sizeRow),
		fSlice("steps", unsafe.Offsetof(explain.CheckTrace{}.Steps), stringElem, sizeString),
		f("valid", kBool, unsafe.Offsetof(explain.CheckTrace{}.Valid)),
		f("reason", kString, unsafe.Offsetof(explain.CheckTrace{}.Reason)),
		f("mss", kUint16, unsafe.Offsetof(explain.CheckTrace{}.MSS)),
	}
	// cookie.TSOptions has no json tags: its Go field names.
	tsOptionsFields = []field{
		f("WScale", kUint8, unsafe.Offsetof(cookie.TSOptions{}.WScale)),
		f("HasWScale", kBool, unsafe.Offsetof(cookie.TSOptions{}.HasWScale)),
		f("SACK", kBool, unsafe.Offsetof(cookie.TSOptions{}.SACK)),
		f("ECN", kBool, unsafe.Offsetof(cookie.TSOptions{}.ECN)),
	}
	tsFields = []field{
		f("present", kBool, unsafe.Offsetof(explain.TSBits{}.Present)),
		f("msNow", kUint32, unsafe.Offsetof(explain.TSBits{}.MsNow)),
		f("bits", kUint32, unsafe.Offsetof(explain.TSBits{}.Bits)),
		f("bitsText", kString, unsafe.Offsetof(explain.TSBits{}.BitsText)),
		f("tsval", kUint32, unsafe.Offsetof(explain.TSBits{}.TSval)),
		fSlice("rows", unsafe.Offsetof(explain.TSBits{}.Rows), rowElem, sizeRow),
		f("wscale", kString, unsafe.Offsetof(explain.TSBits{}.WScale)),
		f("sack", kBool, unsafe.Offsetof(explain.TSBits{}.SACK)),
		f("ecn", kBool, unsafe.Offsetof(explain.TSBits{}.ECN)),
		fStruct("decoded", unsafe.Offsetof(explain.TSBits{}.Decoded), tsOptionsFields),
		f("note", kString, unsafe.Offsetof(explain.TSBits{}.Note)),
	}
	optionFields = []field{
		f("kind", kString, unsafe.Offsetof(explain.Option{}.Kind)),
		f("text", kString, unsafe.Offsetof(explain.Option{}.Text)),
		f("bytes", kString, unsafe.Offsetof(explain.Option{}.Bytes)),
	}
	packetFields = []field{
		f("from", kString, unsafe.Offsetof(explain.Packet{}.From)),
		f("to", kString, unsafe.Offsetof(explain.Packet{}.To)),
		f("src", kString, unsafe.Offsetof(explain.Packet{}.Src)),
		f("dst", kString, unsafe.Offsetof(explain.Packet{}.Dst)),
		f("flags", kString, unsafe.Offsetof(explain.Packet{}.Flags)),
		f("seq", kUint32, unsafe.Offsetof(explain.Packet{}.Seq)),
		f("ack", kUint32, unsafe.Offsetof(explain.Packet{}.Ack)),
		f("window", kUint16, unsafe.Offsetof(explain.Packet{}.Window)),
		fSlice("options", unsafe.Offsetof(explain.Packet{}.Options), field{kind: kStruct, fields: optionFields}, unsafe.Sizeof(explain.Option{})),
		f("dropped", kBool, unsafe.Offsetof(explain.Packet{}.Dropped)),
		f("lost", kBool, unsafe.Offsetof(explain.Packet{}.Lost)),
	}
	stepFields = []field{
		f("id", kString, unsafe.Offsetof(explain.Step{}.ID)),
		f("title", kString, unsafe.Offsetof(explain.Step{}.Title)),
		f("text", kString, unsafe.Offsetof(explain.Step{}.Text)),
		fStruct("packet", unsafe.Offsetof(explain.Step{}.Packet), packetFields),
		f("calc", kString, unsafe.Offsetof(explain.Step{}.Calc)),
		fPtr("check", unsafe.Offsetof(explain.Step{}.Check), checkFields),
	}
	layoutFieldFields = []field{
		f("name", kString, unsafe.Offsetof(explain.LayoutField{}.Name)),
		f("hi", kUint8, unsafe.Offsetof(explain.LayoutField{}.Hi)),
		f("lo", kUint8, unsafe.Offsetof(explain.LayoutField{}.Lo)),
		f("value", kUint32, unsafe.Offsetof(explain.LayoutField{}.Value)),
		f("text", kString, unsafe.Offsetof(explain.LayoutField{}.Text)),
	}
	oddsFields = []field{
		f("case", kString, unsafe.Offsetof(explain.Odds{}.Case)),
		f("exp", kUint8, unsafe.Offsetof(explain.Odds{}.Exp)),
	}
	keptFields = []field{
		f("mss", kUint16, unsafe.Offsetof(explain.Kept{}.MSS)),
		f("wscale", kUint8, unsafe.Offsetof(explain.Kept{}.WScale)),
		f("hasWScale", kBool, unsafe.Offsetof(explain.Kept{}.HasWScale)),
		f("sack", kBool, unsafe.Offsetof(explain.Kept{}.SACK)),
		f("window", kUint32, unsafe.Offsetof(explain.Kept{}.Window)),
		f("mbps", kUint32, unsafe.Offsetof(explain.Kept{}.Mbps)),
	}
	layoutFields = []field{
		f("profile", kString, unsafe.Offsetof(explain.Layout{}.Profile)),
		f("isn", kUint32, unsafe.Offsetof(explain.Layout{}.ISN)),
		f("bits", kString, unsafe.Offsetof(explain.Layout{}.Bits)),
		fSlice("fields", unsafe.Offsetof(explain.Layout{}.Fields), field{kind: kStruct, fields: layoutFieldFields}, unsafe.Sizeof(explain.LayoutField{})),
		f("ts", kString, unsafe.Offsetof(explain.Layout{}.TS)),
		fSlice("odds", unsafe.Offsetof(explain.Layout{}.Odds), field{kind: kStruct, fields: oddsFields}, unsafe.Sizeof(explain.Odds{})),
		fStruct("kept", unsafe.Offsetof(explain.Layout{}.Kept), keptFields),
		f("check", kString, unsafe.Offsetof(explain.Layout{}.Check)),
	}
	scenarioFields = []field{
		fStruct("input", unsafe.Offsetof(explain.Scenario{}.Input), inputFields),
		f("v6", kBool, unsafe.Offsetof(explain.Scenario{}.V6)),
		fStruct("encoding", unsafe.Offsetof(explain.Scenario{}.Encoding), encodingFields),
		fStruct("ts", unsafe.Offsetof(explain.Scenario{}.TS), tsFields),
		f("ackSlot", kUint32, unsafe.Offsetof(explain.Scenario{}.AckSlot)),
		f("lifetime", kUint32, unsafe.Offsetof(explain.Scenario{}.Lifetime)),
		fStruct("check", unsafe.Offsetof(explain.Scenario{}.Check), checkFields),
		fSlice("steps", unsafe.Offsetof(explain.Scenario{}.Steps), field{kind: kStruct, fields: stepFields}, unsafe.Sizeof(explain.Step{})),
		f("summary", kString, unsafe.Offsetof(explain.Scenario{}.Summary)),
		{name: "layouts", kind: kArray, off: unsafe.Offsetof(explain.Scenario{}.Layouts), elem: &field{kind: kStruct, fields: layoutFields}, size: unsafe.Sizeof(explain.Layout{}), n: 2},
	}
	claimFields = []field{
		f("id", kString, unsafe.Offsetof(explain.Claim{}.ID)),
		f("claim", kString, unsafe.Offsetof(explain.Claim{}.Claim)),
		f("kernel", kString, unsafe.Offsetof(explain.Claim{}.Kernel)),
		fSlice("demo", unsafe.Offsetof(explain.Claim{}.Demo), stringElem, sizeString),
		f("verdict", kString, unsafe.Offsetof(explain.Claim{}.Verdict)),
		f("shown", kBool, unsafe.Offsetof(explain.Claim{}.Shown)),
	}
	claimElem   = field{kind: kStruct, fields: claimFields}
	forgeFields = []field{
		f("tries", kUint64, unsafe.Offsetof(explain.ForgeResult{}.Tries)),
		f("accepted", kUint64, unsafe.Offsetof(explain.ForgeResult{}.Accepted)),
		f("topByte", kBool, unsafe.Offsetof(explain.ForgeResult{}.TopByte)),
		f("measured", kFloat64, unsafe.Offsetof(explain.ForgeResult{}.Measured)),
		f("predicted", kFloat64, unsafe.Offsetof(explain.ForgeResult{}.Predicted)),
		f("expected", kFloat64, unsafe.Offsetof(explain.ForgeResult{}.Expected)),
		fSlice("hits", unsafe.Offsetof(explain.ForgeResult{}.Hits), uint32Elem, 4),
		f("verified", kUint64, unsafe.Offsetof(explain.ForgeResult{}.Verified)),
	}
	searchFields = []field{
		f("searched", kUint64, unsafe.Offsetof(explain.Exhaustive{}.Searched)),
		fSlice("hits", unsafe.Offsetof(explain.Exhaustive{}.Hits), uint32Elem, 4),
		fSlice("mss", unsafe.Offsetof(explain.Exhaustive{}.MSS), uint16Elem, 2),
		fSlice("age", unsafe.Offsetof(explain.Exhaustive{}.Age), uint32Elem, 4),
		f("space", kFloat64, unsafe.Offsetof(explain.Exhaustive{}.Space)),
		f("rate", kFloat64, unsafe.Offsetof(explain.Exhaustive{}.Rate)),
	}
	floodConfigFields = []field{
		f("backlog", kInt, unsafe.Offsetof(explain.FloodConfig{}.Backlog)),
		f("timeout", kInt, unsafe.Offsetof(explain.FloodConfig{}.Timeout)),
		f("attack", kInt, unsafe.Offsetof(explain.FloodConfig{}.Attack)),
		f("forgedAcks", kInt, unsafe.Offsetof(explain.FloodConfig{}.ForgedAcks)),
		f("legit", kInt, unsafe.Offsetof(explain.FloodConfig{}.Legit)),
		f("ticks", kInt, unsafe.Offsetof(explain.FloodConfig{}.Ticks)),
		f("attackStart", kInt, unsafe.Offsetof(explain.FloodConfig{}.AttackStart)),
		f("attackEnd", kInt, unsafe.Offsetof(explain.FloodConfig{}.AttackEnd)),
		f("seed", kUint64, unsafe.Offsetof(explain.FloodConfig{}.Seed)),
		f("key", kString, unsafe.Offsetof(explain.FloodConfig{}.Key)),
		f("count", kUint32, unsafe.Offsetof(explain.FloodConfig{}.Count)),
	}
	floodTickFields = []field{
		f("tick", kInt, unsafe.Offsetof(explain.FloodTick{}.Tick)),
		f("attacking", kBool, unsafe.Offsetof(explain.FloodTick{}.Attacking)),
		f("queue", kInt, unsafe.Offsetof(explain.FloodTick{}.Queue)),
		f("queueAttack", kInt, unsafe.Offsetof(explain.FloodTick{}.QueueAttack)),
		f("served", kInt, unsafe.Offsetof(explain.FloodTick{}.Served)),
		f("refused", kInt, unsafe.Offsetof(explain.FloodTick{}.Refused)),
		f("cookieServed", kInt, unsafe.Offsetof(explain.FloodTick{}.CookieServed)),
		f("cookieRefused", kInt, unsafe.Offsetof(explain.FloodTick{}.CookieRefused)),
		f("cookieState", kInt, unsafe.Offsetof(explain.FloodTick{}.CookieState)),
		f("forgedTried", kInt, unsafe.Offsetof(explain.FloodTick{}.ForgedTried)),
		f("forgedPassed", kInt, unsafe.Offsetof(explain.FloodTick{}.ForgedPassed)),
	}
	floodFields = []field{
		fStruct("config", unsafe.Offsetof(explain.FloodResult{}.Config), floodConfigFields),
		fSlice("ticks", unsafe.Offsetof(explain.FloodResult{}.Ticks), field{kind: kStruct, fields: floodTickFields}, unsafe.Sizeof(explain.FloodTick{})),
		f("served", kInt, unsafe.Offsetof(explain.FloodResult{}.Served)),
		f("refused", kInt, unsafe.Offsetof(explain.FloodResult{}.Refused)),
		f("cookieServed", kInt, unsafe.Offsetof(explain.FloodResult{}.CookieServed)),
		f("cookieRefused", kInt, unsafe.Offsetof(explain.FloodResult{}.CookieRefused)),
		f("cookies", kInt, unsafe.Offsetof(explain.FloodResult{}.Cookies)),
		f("checks", kInt, unsafe.Offsetof(explain.FloodResult{}.Checks)),
		f("forgedTried", kInt, unsafe.Offsetof(explain.FloodResult{}.ForgedTried)),
		f("forgedPassed", kInt, unsafe.Offsetof(explain.FloodResult{}.ForgedPassed)),
	}
)

// toJS returns the JavaScript object for the struct at p described by fs.
func toJS(p unsafe.Pointer, fs []field) js.Value {
	o := js.Global().Get("Object").New()
	for i := range fs {
		o.Set(fs[i].name, value(unsafe.Add(p, fs[i].off), &fs[i]))
	}
	return o
}

// value returns the JavaScript value of the field (or element) at p.
func value(p unsafe.Pointer, f *field) any {
	switch f.kind {
	case kString:
		return *(*string)(p)
	case kBool:
		return *(*bool)(p)
	case kUint8:
		return *(*uint8)(p)
	case kUint16:
		return *(*uint16)(p)
	case kUint32:
		return *(*uint32)(p)
	case kUint64:
		return float64(*(*uint64)(p))
	case kInt32:
		return *(*int32)(p)
	case kInt:
		return *(*int)(p)
	case kFloat64:
		return *(*float64)(p)
	case kStruct:
		return toJS(p, f.fields)
	case kPtr:
		q := *(*unsafe.Pointer)(p)
		if q == nil {
			return js.Null()
		}
		return toJS(q, f.fields)
	case kSlice, kArray:
		base, n := p, f.n
		if f.kind == kSlice {
			s := *(*[]byte)(p) // a slice header; len counts elements
			if s == nil {
				return js.Null()
			}
			base, n = unsafe.Pointer(unsafe.SliceData(s)), len(s)
		}
		a := js.Global().Get("Array").New(n)
		for i := range n {
			a.SetIndex(i, value(unsafe.Add(base, uintptr(i)*f.size), f.elem))
		}
		return a
	}
	panic("explain: no conversion for kind " + string(rune('0'+f.kind)))
}

// Typed entry points: the only places a table meets its type.

func inputJS(in *explain.Input) js.Value      { return toJS(unsafe.Pointer(in), inputFields) }
func scenarioJS(s *explain.Scenario) js.Value { return toJS(unsafe.Pointer(s), scenarioFields) }
func forgeJS(r *explain.ForgeResult) js.Value { return toJS(unsafe.Pointer(r), forgeFields) }
func searchJS(r *explain.Exhaustive) js.Value { return toJS(unsafe.Pointer(r), searchFields) }
func floodJS(r *explain.FloodResult) js.Value { return toJS(unsafe.Pointer(r), floodFields) }
func floodConfigJS(c *explain.FloodConfig) js.Value {
	return toJS(unsafe.Pointer(c), floodConfigFields)
}

func claimsJS(cs []explain.Claim) js.Value {
	return value(unsafe.Pointer(&cs), &field{kind: kSlice, elem: &claimElem, size: unsafe.Sizeof(explain.Claim{})}).(js.Value)
}

func decodeInput(o js.Value, in *explain.Input) error {
	return fromJS(o, unsafe.Pointer(in), inputFields)
}

func decodeFlood(o js.Value, c *explain.FloodConfig) error {
	return fromJS(o, unsafe.Pointer(c), floodConfigFields)
}

const maxExact = 1 << 53 // the largest integer a JavaScript number holds exactly

// fromJS fills the struct at p, described by fs, from the JavaScript object
// o: each property must name a field and have the field's type (a string, a
// boolean, or an integer number in the field's range); missing properties
// leave their fields alone.
func fromJS(o js.Value, p unsafe.Pointer, fs []field) error {
	keys := js.Global().Get("Object").Call("keys", o)
	for k := 0; k < keys.Length(); k++ {
		name := keys.Index(k).String()
		var f *field
		for i := range fs {
			if fs[i].name == name {
				f = &fs[i]
			}
		}
		if f == nil {
			return errors.New("explain: unknown input " + name)
		}
		if err := setField(unsafe.Add(p, f.off), f.kind, o.Get(name)); err != nil {
			return errors.New("explain: input " + name + ": " + err.Error())
		}
	}
	return nil
}

// ranges are the integers each numeric kind holds (within maxExact).
var ranges = [...][2]float64{
	kUint8:  {0, math.MaxUint8},
	kUint16: {0, math.MaxUint16},
	kUint32: {0, math.MaxUint32},
	kUint64: {0, maxExact},
	kInt32:  {math.MinInt32, math.MaxInt32},
	kInt:    {-maxExact, maxExact},
}

func setField(p unsafe.Pointer, k kind, v js.Value) error {
	switch k {
	case kString:
		if v.Type() != js.TypeString {
			return errors.New("must be a string, not " + v.Type().String())
		}
		*(*string)(p) = v.String()
		return nil
	case kBool:
		if v.Type() != js.TypeBoolean {
			return errors.New("must be a boolean, not " + v.Type().String())
		}
		*(*bool)(p) = v.Bool()
		return nil
	case kUint8, kUint16, kUint32, kUint64, kInt32, kInt:
	default:
		return errors.New("unsupported field type")
	}
	if v.Type() != js.TypeNumber {
		return errors.New("must be a number, not " + v.Type().String())
	}
	x := v.Float()
	if x != math.Trunc(x) || math.IsInf(x, 0) {
		return errors.New("must be a whole number")
	}
	if math.Abs(x) > maxExact {
		return errors.New("too large for a JavaScript number to hold exactly")
	}
	if x < ranges[k][0] || x > ranges[k][1] {
		return errors.New("out of range")
	}
	switch k {
	case kUint8:
		*(*uint8)(p) = uint8(x)
	case kUint16:
		*(*uint16)(p) = uint16(x)
	case kUint32:
		*(*uint32)(p) = uint32(x)
	case kUint64:
		*(*uint64)(p) = uint64(x)
	case kInt32:
		*(*int32)(p) = int32(x)
	case kInt:
		*(*int)(p) = int(x)
	}
	return nil
}
