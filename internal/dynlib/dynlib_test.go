package dynlib

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

var errGone = errors.New("lib: unavailable")

func TestFirstOf(t *testing.T) {
	open := func(p string) (string, error) {
		if strings.HasPrefix(p, "good") {
			return "opened " + p, nil
		}
		return "", fmt.Errorf("%w: %s: no such file", errGone, p)
	}
	if l, tried, ok := FirstOf([]string{"a", "good1", "good2"}, errGone, open); !ok || l != "opened good1" || tried != "" {
		t.Fatalf("got %q %q %v", l, tried, ok)
	}
	l, tried, ok := FirstOf([]string{"a", "b"}, errGone, open)
	if ok || l != "" || tried != "a: no such file; b: no such file" {
		t.Fatalf("got %q %q %v", l, tried, ok)
	}
}
