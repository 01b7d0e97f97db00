// Package browsertest drives the explainer page (package site) in headless
// Chromium with chromedp: every view, the worked examples, the experiments
// and the exported copy, with no request leaving the page's origin.
//
// It is a module of its own, so that chromedp and cdproto stay out of the
// main module's requirements: importers of synproxy-lite never resolve them.
// Run its tests from this directory:
//
//	cd wasm/browsertest && go test -race ./...
//
// scripts/test.sh runs them with the rest of the suite.
package browsertest
