//go:build js && wasm

// Command wasm is the browser explainer's WebAssembly program: it exposes
// package explain to the page and nothing else.
//
// It defines one global function, newExplainer, that returns an API object
// whose methods take plain JavaScript objects (the page's control values),
// check their types, and return plain objects: the computation's result, or
// {error: "..."} — a panic is recovered into such an error, never a crash of
// the page. release() frees the object's Go callbacks.
//
// Build it with go generate ./wasm/site or make wasm (see wasm/site); the
// result, wasm/site/static/explain.wasm, is committed.
package main
