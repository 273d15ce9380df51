package wire

import (
	"encoding/json"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// AuditEntry is e on the wire.
func AuditEntry(e catalog.AuditEntry) inventoryapi.AuditEntry {
	summary := json.RawMessage(e.Summary)
	if !json.Valid(summary) { // the store holds what NewAuditEntry encoded; never send broken JSON
		summary = json.RawMessage(`{}`)
	}
	return inventoryapi.AuditEntry{
		ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, Entity: e.Entity, Name: e.Name, Summary: summary,
	}
}

// Delta is d on the wire.
func Delta(d catalog.Delta) inventoryapi.Delta {
	return inventoryapi.Delta{
		Tree: d.Tree, From: d.From, To: d.To, Pack: d.Pack, Size: d.Size, ComputedAt: d.ComputedAt,
		ComputedBy: d.ComputedBy, ComputeMS: d.ComputeMS, FirstSeenAt: d.FirstSeenAt, TimesServed: d.TimesServed,
	}
}

// EventProblem is p on the wire.
func EventProblem(p catalog.EventProblem) inventoryapi.EventProblem {
	return inventoryapi.EventProblem{EventID: p.EventID, Type: p.Type, Subject: p.Subject, Reason: p.Reason, ReceivedAt: p.ReceivedAt}
}
