package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSecretFile bounds a secret file.
const maxSecretFile = 4096

// SecretFile reads a secret kept alone on one line of a file (a mounted
// secret, a token file written by `pulpdist token provision`): the
// surrounding whitespace is dropped; an empty file, several lines or more
// than 4 KiB are refused.
func SecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("secret file %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	if len(b) > maxSecretFile || s == "" || strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("secret file %s must hold one value on one line, at most %d bytes", path, maxSecretFile)
	}
	return s, nil
}

// SecretOrFile is the secret given directly or, when file is set, read
// from it; both set is an error.
func SecretOrFile(what, secret, file string) (string, error) {
	switch {
	case file == "":
		return secret, nil
	case secret != "":
		return "", errors.New(what + ": give it or its file, not both")
	}
	s, err := SecretFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return s, nil
}
