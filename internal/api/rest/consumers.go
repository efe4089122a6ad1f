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
		// list answers an administrator with the items read returns.
		list := func(read func(r *http.Request) (any, error)) methods {
			return methods{"GET": func(w http.ResponseWriter, r *http.Request) error {
				if err := adminOnly(r, a.Kind()); err != nil {
					return err
				}
				items, err := read(r)
				if err != nil {
					return err
				}
				return writeItems(w, items)
			}}
		}
		route(base, list(func(*http.Request) (any, error) { return a.Statuses(), nil }))
		route(base+"/{name}/"+a.AttemptsName(), list(func(r *http.Request) (any, error) { return a.Attempts(r.PathValue("name")) }))
		route(base+"/{name}/dead", list(func(r *http.Request) (any, error) { return a.DeadLetters(r.Context(), r.PathValue("name")) }))
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
