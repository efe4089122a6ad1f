package rest

import (
	"encoding/json"
	"net/http"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/gateway"
)

// The automation endpoints (docs/automations.md). All are for
// administrators but run, which the automation's allow rule decides.

func (h *handler) automationFailed(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "automations"); err != nil {
		return err
	}
	runs, err := h.Automations.Failed(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeItems(w, runs)
}

// automationRun starts a hook automation with the body as its input and
// answers the run.
func (h *handler) automationRun(w http.ResponseWriter, r *http.Request) error {
	var body []byte
	if r.ContentLength != 0 {
		b, err := gateway.ReadBody(r)
		if err != nil {
			return err
		}
		if !json.Valid(b) {
			return mantle.Errorf(mantle.Invalid, "request.malformed_json", "the body is not JSON")
		}
		body = b
	}
	run, err := h.Automations.Trigger(r.Context(), r.PathValue("name"), body)
	if err != nil {
		return err
	}
	b, err := json.Marshal(run)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}
