package rest

import (
	"encoding/json"
	"net/http"

	"github.com/mantlehq/mantle"
)

func (h *handler) schema(w http.ResponseWriter, r *http.Request) error {
	b, err := json.Marshal(h.Engine.Schema())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}

func (h *handler) openapi(w http.ResponseWriter, r *http.Request) error {
	if h.OpenAPI == nil {
		return mantle.Errorf(mantle.NotFound, "route.not_found", "no OpenAPI document is configured")
	}
	return writeJSON(w, http.StatusOK, h.OpenAPI(h.Engine.Schema()))
}
