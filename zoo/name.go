package zoo

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// MaxNameLen bounds the length of a model name or reference.
const MaxNameLen = 128

// Ref is a parsed model reference: a catalog name, optionally pinned to a
// SHA-256 digest ("BiT-M-R50x1@sha256:3fa4...").
type Ref struct {
	Name   string // as given (case kept); catalog lookup ignores case
	Digest string // lowercase hex SHA-256, or ""
}

// String formats the reference so that ParseName(r.String()) == r.
func (r Ref) String() string {
	if r.Digest == "" {
		return r.Name
	}
	return r.Name + "@sha256:" + r.Digest
}

// ParseName parses a model reference: NAME or NAME@sha256:HEX. NAME is one or
// more segments of letters, digits, '.', '_' and '-' joined by '/' (so file
// paths such as "vtab/BiT-M-R50x1-run0-dtd" are accepted), at most MaxNameLen
// bytes, with no empty, "." or ".." segment: a name can never leave the cache
// directory. Surrounding white space is ignored.
func ParseName(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	name, digest, hasDigest := strings.Cut(s, "@")
	if err := checkName(name); err != nil {
		return Ref{}, err
	}
	ref := Ref{Name: name}
	if hasDigest {
		d, err := parseDigest(digest)
		if err != nil {
			return Ref{}, fmt.Errorf("%w: %q: %v", ErrName, clip(s), err)
		}
		ref.Digest = d
	}
	return ref, nil
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: name longer than %d bytes", ErrName, MaxNameLen)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q: empty, '.' or '..' path segment", ErrName, clip(name))
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("%w: %q: character %q not allowed (letters, digits, '.', '_', '-', '/')", ErrName, clip(name), c)
			}
		}
	}
	return nil
}

// parseDigest accepts "sha256:HEX" or a bare 64-digit hex string and returns
// the lowercase hex.
func parseDigest(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "sha256:")
	if len(s) != 64 {
		return "", fmt.Errorf("sha256 digest must be 64 hex digits, got %d characters", len(s))
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", fmt.Errorf("sha256 digest is not hex")
	}
	return strings.ToLower(s), nil
}

// ParseDigest validates a SHA-256 digest given as 64 hex digits, optionally
// prefixed with "sha256:", and returns it in lowercase hex.
func ParseDigest(s string) (string, error) {
	d, err := parseDigest(s)
	if err != nil {
		return "", fmt.Errorf("zoo: %w", err)
	}
	return d, nil
}

// clip shortens s for error messages.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// suggest returns up to max catalog names close to name: those sharing a
// case-insensitive substring relation first, then by edit distance.
func suggest(name string, names []string, max int) []string {
	q := strings.ToLower(name)
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	limit := len(q)/3 + 2
	for _, n := range names {
		l := strings.ToLower(n)
		d := editDistance(q, l, limit)
		if len(q) >= 3 && (strings.Contains(l, q) || strings.Contains(q, l)) {
			d = 0
		}
		if d <= limit {
			cs = append(cs, cand{n, d})
		}
	}
	// Insertion sort keeps it dependency-free and stable; the list is short.
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].d < cs[j-1].d; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
	var out []string
	for _, c := range cs {
		if len(out) == max {
			break
		}
		out = append(out, c.name)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b, or limit+1 when it
// exceeds limit (bytes, not runes: names are ASCII).
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			best = min(best, cur[j])
		}
		if best > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
