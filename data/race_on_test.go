//go:build race

package data

// raceEnabled: sync.Pool drops items at random under the race detector.
const raceEnabled = true
