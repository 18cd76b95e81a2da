package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrInvalidTokens is returned by [ParseTokens] (and [Gateway.SetTokens])
// for a tokens file that cannot be used. Its messages name the entry and
// the field at fault, never a token, a hash or an environment variable's
// value.
var ErrInvalidTokens = errors.New("gateway: invalid tokens")

// Token is one accepted bearer token: who holds it, which robots it may
// address, and how fast.
type Token struct {
	// Name identifies the token's holder in logs and answers (never the
	// token itself): 1–64 of [A-Za-z0-9_.-], unique.
	Name string
	// SHA256 is the SHA-256 of the token; the gateway keeps no token.
	SHA256 [sha256.Size]byte
	// Robots is the token's scope: robot names or globs ("team-a-*",
	// path.Match syntax) it may address. Empty means every robot. A
	// request naming a robot outside it is refused with 403 and nothing
	// is stored. Patterns match the name a request addresses, so when
	// pools and groups arrive, their names are matched the same way.
	Robots []string
	// Rate is the requests per second allowed (a token bucket holding
	// Burst requests); 0 means no limit.
	Rate float64
	// Burst is the bucket's size; 0 means max(1, ceil(Rate)).
	Burst int
	// MaxMessagesPerMinute bounds the messages stored per rolling minute
	// over all the token's requests (batch lines, fan-out copies and split
	// parts each count one); 0 means no limit.
	MaxMessagesPerMinute int
}

// limited reports whether the token needs a [Limiter].
func (t *Token) limited() bool { return t.Rate > 0 || t.MaxMessagesPerMinute > 0 }

// burst is the token bucket's size.
func (t *Token) burst() int {
	if t.Burst > 0 {
		return t.Burst
	}
	return max(1, int(math.Ceil(t.Rate)))
}

// Allows reports whether the token's scope covers robot.
func (t *Token) Allows(robot string) bool {
	if len(t.Robots) == 0 {
		return true
	}
	for _, p := range t.Robots {
		if ok, _ := path.Match(p, robot); ok {
			return true
		}
	}
	return false
}

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// validateTokens checks a set of tokens: valid, unique names and hashes,
// valid patterns and rates.
func validateTokens(tokens []Token) error {
	var errs []error
	names := make(map[string]int, len(tokens))
	hashes := make(map[[sha256.Size]byte]int, len(tokens))
	for i, t := range tokens {
		where := fmt.Sprintf("tokens[%d]", i)
		if tokenNameRE.MatchString(t.Name) {
			where += fmt.Sprintf(" %q", t.Name)
			if j, dup := names[t.Name]; dup {
				errs = append(errs, fmt.Errorf("%s: name: also the name of tokens[%d]", where, j))
			}
			names[t.Name] = i
		} else {
			errs = append(errs, fmt.Errorf("%s: name: must be 1-64 characters of [A-Za-z0-9_.-]", where))
		}
		if t.SHA256 == ([sha256.Size]byte{}) {
			errs = append(errs, fmt.Errorf("%s: no token: set sha256 or token_env", where))
		} else if j, dup := hashes[t.SHA256]; dup {
			errs = append(errs, fmt.Errorf("%s: the same token as tokens[%d]", where, j))
		} else {
			hashes[t.SHA256] = i
		}
		for k, p := range t.Robots {
			if _, err := path.Match(p, ""); err != nil || p == "" || strings.ContainsAny(p, "/. \t") {
				errs = append(errs, fmt.Errorf("%s: robots[%d]: not a robot name or glob", where, k))
			}
		}
		switch {
		case t.Rate < 0 || math.IsNaN(t.Rate) || math.IsInf(t.Rate, 0):
			errs = append(errs, fmt.Errorf("%s: rate: must be a positive number of requests per second, or 0 for no limit", where))
		case t.Burst < 0:
			errs = append(errs, fmt.Errorf("%s: burst: must not be negative", where))
		case t.Burst > 0 && t.Rate == 0:
			errs = append(errs, fmt.Errorf("%s: burst: needs a rate", where))
		}
		if t.MaxMessagesPerMinute < 0 {
			errs = append(errs, fmt.Errorf("%s: max_messages_per_minute: must not be negative", where))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTokens, err)
	}
	return nil
}

// tokensFile is the YAML of a tokens file.
type tokensFile struct {
	Tokens []struct {
		Name                 string   `yaml:"name"`
		SHA256               string   `yaml:"sha256"`
		TokenEnv             string   `yaml:"token_env"`
		Robots               []string `yaml:"robots"`
		Rate                 float64  `yaml:"rate"`
		Burst                int      `yaml:"burst"`
		MaxMessagesPerMinute int      `yaml:"max_messages_per_minute"`
	} `yaml:"tokens"`
}

// ParseTokens reads a tokens file:
//
//	tokens:
//	  - name: team-a                  # in logs and metrics, never the token
//	    sha256: "<hex of the token>"  # or token_env: NAME
//	    robots: ["team-a-*", "ops-alerts"]
//	    rate: 50                      # requests/s, token bucket
//	    burst: 100
//	    max_messages_per_minute: 600
//
// token_env names an environment variable (looked up with lookup) holding
// the token itself. Every problem is reported, naming the entry and the
// field, never a value that came from the environment or a hash.
func ParseTokens(data []byte, lookup func(string) (string, bool)) ([]Token, error) {
	var f tokensFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidTokens, yamlProblem(err))
	}
	if len(f.Tokens) == 0 {
		return nil, fmt.Errorf("%w: no tokens", ErrInvalidTokens)
	}
	var errs []error
	tokens := make([]Token, len(f.Tokens))
	for i, e := range f.Tokens {
		t := Token{Name: e.Name, Robots: e.Robots, Rate: e.Rate, Burst: e.Burst, MaxMessagesPerMinute: e.MaxMessagesPerMinute}
		where := fmt.Sprintf("tokens[%d]", i)
		if tokenNameRE.MatchString(e.Name) {
			where += fmt.Sprintf(" %q", e.Name)
		}
		switch {
		case e.SHA256 != "" && e.TokenEnv != "":
			errs = append(errs, fmt.Errorf("%s: sha256 and token_env: set one", where))
		case e.SHA256 != "":
			b, err := hex.DecodeString(strings.TrimSpace(e.SHA256))
			if err != nil || len(b) != sha256.Size {
				errs = append(errs, fmt.Errorf("%s: sha256: must be 64 hex digits (sha256sum of the token)", where))
			} else {
				copy(t.SHA256[:], b)
			}
		case e.TokenEnv != "":
			v, ok := lookup(e.TokenEnv)
			if v = strings.TrimSpace(v); !ok || v == "" {
				errs = append(errs, fmt.Errorf("%s: token_env: environment variable %s is not set or empty", where, e.TokenEnv))
			} else {
				t.SHA256 = sha256.Sum256([]byte(v))
			}
		}
		tokens[i] = t
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTokens, err)
	}
	if err := validateTokens(tokens); err != nil {
		return nil, err
	}
	return tokens, nil
}

// yamlProblem describes a YAML error without echoing the document: yaml.v3
// quotes offending values in its messages ("cannot unmarshal !!str `...`").
func yamlProblem(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var ps []string
		for _, e := range te.Errors {
			line, _, _ := strings.Cut(e, ":")
			if strings.Contains(e, "not found in type") {
				field := e[strings.LastIndex(e, "field ")+len("field "):]
				field, _, _ = strings.Cut(field, " ")
				ps = append(ps, line+": unknown field "+field)
				continue
			}
			ps = append(ps, line+": wrong type of value")
		}
		return strings.Join(ps, "; ")
	}
	msg := err.Error()
	if line, _, ok := strings.Cut(strings.TrimPrefix(msg, "yaml: "), ":"); ok && strings.HasPrefix(line, "line ") {
		return "YAML syntax error at " + line
	}
	return "YAML syntax error"
}
