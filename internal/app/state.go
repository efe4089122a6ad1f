package app

import (
	"github.com/mantlehq/mantle/internal/api/kafka"
	"github.com/mantlehq/mantle/internal/auth"
	"github.com/mantlehq/mantle/internal/automation"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/fn"
	"github.com/mantlehq/mantle/internal/webhook"
)

// StateKinds is the registry of system state: every kind any package
// keeps beside the records, registered on the engine at start (a write of
// another kind fails), and walked by replay and backups.
func StateKinds() []engine.StateKind {
	kinds := []engine.StateKind{
		{Name: auth.KindPassword, Owner: "auth", What: "a user's argon2id password hash", Copy: true},
		{Name: auth.KindSession, Owner: "auth", What: "a refresh-token session", Copy: true},
		{Name: auth.KindAPIKey, Owner: "auth", What: "an API key's hash, name and roles", Copy: true},
		{Name: auth.KindIdentity, Owner: "auth", What: "an OIDC provider|subject linked to a user", Copy: true},
		{Name: auth.StoredKeysKind, Owner: "auth", What: "the token signing keys nodes of a cluster share", Copy: true},
		{Name: engine.KindUserEpoch, Owner: "engine", What: "when a user's roles, password or account last changed", Copy: true},
		{Name: webhook.SecretKind, Owner: "webhook", What: "a webhook's generated signing secret", Copy: true},
		{Name: automation.KindFailed, Owner: "automation", What: "a failed automation run, to resume", Copy: true},
		{Name: kafka.KindOffset, Owner: "kafka", What: "a consumer group's committed offset", Copy: true},
		{Name: kindCluster, Owner: "app", What: "the cluster that runs this database", Copy: false},
	}
	kinds = append(kinds, engine.ConsumerKinds(webhook.Kind, "webhook")...)
	kinds = append(kinds, engine.ConsumerKinds(fn.KindTrigger, "fn")...)
	kinds = append(kinds, engine.ConsumerKinds(automation.Kind, "automation")...)
	return kinds
}
