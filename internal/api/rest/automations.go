package rest

import (
	"encoding/json"
	"net/http"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/gateway"
)

// The automation endpoints (docs/automations.md). All are for
// administrators but run, which the automation's allow rule decides.

func (h *handler) automations(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "automations"); err != nil {
		return err
	}
	return writeItems(w, h.Automations.Statuses())
}

func (h *handler) automationRuns(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "automations"); err != nil {
		return err
	}
	runs, err := h.Automations.Runs(r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeItems(w, runs)
}

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

func (h *handler) automationDead(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "automations"); err != nil {
		return err
	}
	d, err := h.Automations.DeadLetters(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeItems(w, d)
}

func (h *handler) automationReplay(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "automations"); err != nil {
		return err
	}
	from, err := readFrom(r, "automation.invalid_replay")
	if err != nil {
		return err
	}
	if err := h.Automations.Replay(r.PathValue("name"), from); err != nil {
		return err
	}
	b, _ := json.Marshal(map[string]int64{"from": from})
	return writeJSON(w, http.StatusAccepted, b)
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
