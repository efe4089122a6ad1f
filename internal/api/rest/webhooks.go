package rest

import (
	"encoding/json"
	"net/http"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/gateway"
)

// The administration endpoints of the log's consumers (webhooks,
// functions, automations; see consumers.go) are for administrators:
// deliveries and logs carry every event.
func adminOnly(r *http.Request, what string) error {
	id := mantle.IdentityFrom(r.Context())
	switch {
	case id.IsAdmin():
		return nil
	case id.Anonymous():
		return mantle.Errorf(mantle.Unauthenticated, "auth.required", "%s are managed by administrators; sign in", what)
	}
	return mantle.Errorf(mantle.PermissionDenied, "policy.denied", "%s are managed by administrators", what)
}

// readFrom reads the {"from": SEQ} body of a replay.
func readFrom(r *http.Request, reason string) (int64, error) {
	obj, err := gateway.ReadObject(r)
	if err != nil {
		return 0, err
	}
	var from int64
	if raw, ok := obj["from"]; !ok || json.Unmarshal(raw, &from) != nil {
		return 0, mantle.FieldError(reason, "from must be a sequence number", map[string]string{"from": "a sequence number"})
	}
	return from, nil
}

func writeItems(w http.ResponseWriter, items any) error {
	b, err := json.Marshal(map[string]any{"items": items})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}
