package store

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

func testTokens(t *testing.T, s *Store) {
	ctx := context.Background()
	viewer := catalog.Token{ID: "0123456789ab", Name: "ops laptop", Role: catalog.RoleViewer, CreatedAt: t0}
	agent := catalog.Token{ID: "ba9876543210", Role: catalog.RoleAgent, Site: "replica-a", CreatedAt: t0.Add(time.Second)}
	h1, h2 := strings.Repeat("1", 64), strings.Repeat("2", 64)
	must(t, s.CreateToken(ctx, viewer, h1))
	must(t, s.CreateToken(ctx, agent, h2))
	wantErr(t, s.CreateToken(ctx, viewer, strings.Repeat("3", 64)), catalog.ErrAlreadyExists)
	wantErr(t, s.CreateToken(ctx, catalog.Token{ID: "cccccccccccc", Role: catalog.RoleAdmin, CreatedAt: t0}, h1), catalog.ErrAlreadyExists)
	// The schema refuses what the catalog would never send.
	if err := s.CreateToken(ctx, catalog.Token{ID: "dddddddddddd", Role: "root", CreatedAt: t0}, strings.Repeat("4", 64)); err == nil {
		t.Fatal("role root stored")
	}
	if err := s.CreateToken(ctx, catalog.Token{ID: "eeeeeeeeeeee", Role: catalog.RoleAgent, CreatedAt: t0}, strings.Repeat("5", 64)); err == nil {
		t.Fatal("agent token without a site stored")
	}
	if err := s.CreateToken(ctx, catalog.Token{ID: "ffffffffffff", Role: catalog.RoleAdmin, Site: "x", CreatedAt: t0}, strings.Repeat("6", 64)); err == nil {
		t.Fatal("admin token with a site stored")
	}

	got, err := s.TokenByHash(ctx, h2)
	must(t, err)
	if !reflect.DeepEqual(got, agent) {
		t.Fatalf("token = %+v, want %+v", got, agent)
	}
	_, err = s.TokenByHash(ctx, strings.Repeat("9", 64))
	wantErr(t, err, catalog.ErrTokenNotFound)

	at := t0.Add(time.Hour)
	r, err := s.RevokeToken(catalog.WithActor(ctx, "alice"), viewer.ID, at)
	must(t, err)
	if r.RevokedAt == nil || !r.RevokedAt.Equal(at) {
		t.Fatalf("revoked at %v, want %v", r.RevokedAt, at)
	}
	// Revoking again keeps the first time.
	r, err = s.RevokeToken(ctx, viewer.ID, at.Add(time.Hour))
	must(t, err)
	if !r.RevokedAt.Equal(at) {
		t.Fatalf("revoked again at %v, want %v", r.RevokedAt, at)
	}
	_, err = s.RevokeToken(ctx, "000000000000", at)
	wantErr(t, err, catalog.ErrTokenNotFound)
	got, err = s.TokenByHash(ctx, h1)
	must(t, err)
	if got.RevokedAt == nil {
		t.Fatal("revoked token found without its revocation")
	}

	if got, hash, err := s.TokenByID(ctx, agent.ID); err != nil || got.Site != "replica-a" || hash != h2 {
		t.Fatalf("token by id = %+v %q, %v", got, hash, err)
	}
	_, _, err = s.TokenByID(ctx, "999999999999")
	wantErr(t, err, catalog.ErrTokenNotFound)

	all, err := s.Tokens(ctx)
	must(t, err)
	if len(all) != 2 || all[0].ID != viewer.ID || all[1].ID != agent.ID || all[0].RevokedAt == nil || all[1].RevokedAt != nil {
		t.Fatalf("tokens = %+v", all)
	}

	// Each creation and the one revocation that changed something are
	// audited, in their transaction, with the actor of the context.
	log, err := s.AuditLog(ctx, catalog.AuditFilter{Limit: 100})
	must(t, err)
	var audited []string
	for _, e := range log {
		if e.Entity == "token" {
			audited = append(audited, e.Action+" "+e.Name+" "+e.Actor)
		}
	}
	want := []string{"revoke " + viewer.ID + " alice", "create " + agent.ID + " anonymous", "create " + viewer.ID + " anonymous"}
	if !slices.Equal(audited, want) {
		t.Fatalf("token audit entries %q, want %q", audited, want)
	}
}
