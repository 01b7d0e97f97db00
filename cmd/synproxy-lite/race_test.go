//go:build race

package main

// raceEnabled: the race detector multiplies memory use (shadow memory).
const raceEnabled = true
