package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxSecretFile is the largest secret file read: a robot secret or an app
// secret is well under a hundred bytes, so a bigger file is a mistake (the
// wrong path, a device) and is refused rather than read into memory.
const MaxSecretFile = 64 << 10

// readSecretFile reads the secret in path, trimmed of surrounding space.
// field names the setting in errors, which never carry the content.
func readSecretFile(field, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: cannot read %s: %v", field, path, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("%s: cannot read %s: %v", field, path, errors.Unwrap(err))
	}
	if len(b) > MaxSecretFile {
		return "", fmt.Errorf("%s: %s is larger than %d bytes: not a secret", field, path, MaxSecretFile)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", field, path)
	}
	return s, nil
}
