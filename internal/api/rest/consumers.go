package rest

import (
	"encoding/json"
	"net/http"

	"github.com/mantlehq/mantle/internal/consumer"
)

// mountConsumers mounts the one administration surface of the durable
// consumers of the log (webhooks, functions, automations): their list,
// recent attempts, dead letters and replay, for administrators. The
// kinds' own extras (a function's log and invoke, an automation's failed
// runs and hook) are mounted beside them.
func (h *handler) mountConsumers(route func(string, methods), admins []consumer.Admin) {
	for _, a := range admins {
		base := "/api/" + a.Kind()
		route(base, methods{"GET": func(w http.ResponseWriter, r *http.Request) error {
			if err := adminOnly(r, a.Kind()); err != nil {
				return err
			}
			return writeItems(w, a.Statuses())
		}})
		route(base+"/{name}/"+a.AttemptsName(), methods{"GET": func(w http.ResponseWriter, r *http.Request) error {
			if err := adminOnly(r, a.Kind()); err != nil {
				return err
			}
			items, err := a.Attempts(r.PathValue("name"))
			if err != nil {
				return err
			}
			return writeItems(w, items)
		}})
		route(base+"/{name}/dead", methods{"GET": func(w http.ResponseWriter, r *http.Request) error {
			if err := adminOnly(r, a.Kind()); err != nil {
				return err
			}
			items, err := a.DeadLetters(r.Context(), r.PathValue("name"))
			if err != nil {
				return err
			}
			return writeItems(w, items)
		}})
		route(base+"/{name}/replay", methods{"POST": func(w http.ResponseWriter, r *http.Request) error {
			if err := adminOnly(r, a.Kind()); err != nil {
				return err
			}
			from, err := readFrom(r, a.ReplayReason())
			if err != nil {
				return err
			}
			if err := a.Replay(r.Context(), r.PathValue("name"), from); err != nil {
				return err
			}
			b, _ := json.Marshal(map[string]int64{"from": from})
			return writeJSON(w, http.StatusAccepted, b)
		}})
	}
}
