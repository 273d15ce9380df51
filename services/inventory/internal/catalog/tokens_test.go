package catalog

import (
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, tok, err := newToken()
		if err != nil {
			t.Fatal(err)
		}
		if !ValidTokenForm(tok) || len(tok) != TokenLen || !strings.HasPrefix(tok, tokenPrefix+id+"_") || validTokenID(id) != nil {
			t.Fatalf("token %q (id %q) is not well formed", tok, id)
		}
		if seen[tok] || seen[id] {
			t.Fatalf("token %q or id %q made twice", tok, id)
		}
		seen[tok], seen[id] = true, true
		if h := HashToken(tok); len(h) != 64 || h == HashToken(tok[:len(tok)-1]) {
			t.Fatalf("hash %q", h)
		}
	}
}

func TestValidTokenForm(t *testing.T) {
	good := "pdt_0123456789ab_" + strings.Repeat("x", 43)
	if !ValidTokenForm(good) {
		t.Fatal("good token refused")
	}
	for _, bad := range []string{
		"",
		good[:len(good)-1],
		good + "x",
		"pdx_0123456789ab_" + strings.Repeat("x", 43),
		"pdt_0123456789AB_" + strings.Repeat("x", 43),
		"pdt_0123456789ab-" + strings.Repeat("x", 43),
		"pdt_0123456789ab_" + strings.Repeat("x", 42) + "=",
		"pdt_0123456789ab_" + strings.Repeat("x", 42) + "+",
		"pdt_0123456789a_x" + strings.Repeat("x", 43),
		strings.Repeat("a", 10000),
	} {
		if ValidTokenForm(bad) {
			t.Errorf("accepted %.60q", bad)
		}
	}
}

func TestTokenRequest(t *testing.T) {
	for _, tc := range []struct {
		in  TokenRequest
		err string
	}{
		{in: TokenRequest{Role: RoleViewer}},
		{in: TokenRequest{Role: RoleOperator, Name: "night shift — ops"}},
		{in: TokenRequest{Role: RoleAdmin}},
		{in: TokenRequest{Role: RoleAgent, Site: "lab-brno"}},
		{in: TokenRequest{}, err: `role ""`},
		{in: TokenRequest{Role: "root"}, err: `role "root": want viewer, operator, admin or agent`},
		{in: TokenRequest{Role: "Admin"}, err: `role "Admin"`},
		{in: TokenRequest{Role: RoleAgent}, err: "an agent token needs a site"},
		{in: TokenRequest{Role: RoleAgent, Site: "Lab Brno"}, err: "site"},
		{in: TokenRequest{Role: RoleAdmin, Site: "lab-brno"}, err: "only agent tokens are bound to a site, not admin tokens"},
		{in: TokenRequest{Role: RoleViewer, Name: strings.Repeat("n", maxTokenName+1)}, err: "at most 200 bytes"},
		{in: TokenRequest{Role: RoleViewer, Name: "a\x00b"}, err: "control characters"},
		{in: TokenRequest{Role: RoleViewer, Name: "\xff"}, err: "UTF-8"},
	} {
		check(t, "Validate "+string(tc.in.Role), tc.in.Validate(), tc.err)
	}
}
