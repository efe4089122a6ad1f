package rest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/gateway"
	"github.com/mantlehq/mantle/internal/schema"
)

func etag(r *schema.Record) string { return `"` + strconv.FormatInt(r.Version, 10) + `"` }

func recordPath(c, id string) string {
	return "/api/collections/" + url.PathEscape(c) + "/records/" + url.PathEscape(id)
}

func (h *handler) writeRecord(w http.ResponseWriter, status int, c *schema.Collection, rec *schema.Record) error {
	w.Header().Set("ETag", etag(rec))
	return writeJSON(w, status, c.AppendJSON(make([]byte, 0, 512), rec, nil, nil))
}

// writeResult answers a write with the record JSON its event carries.
func (h *handler) writeResult(w http.ResponseWriter, status int, res engine.Result) error {
	w.Header().Set("ETag", etag(res.Record))
	if res.JSON == nil {
		return h.writeRecord(w, status, res.Collection, res.Record)
	}
	return writeJSON(w, status, res.JSON) // res.JSON is this answer's own copy

}

func (h *handler) create(w http.ResponseWriter, r *http.Request) error {
	data, err := gateway.ReadObject(r)
	if err != nil {
		return err
	}
	res, err := h.Engine.Write(r.Context(), []engine.Op{{Kind: engine.Create, Collection: r.PathValue("c"), Data: data}})
	if err != nil {
		return err
	}
	rec := res[0].Record
	w.Header().Set("Location", recordPath(res[0].Collection.Name, rec.ID))
	setSeq(w, res)
	return h.writeResult(w, http.StatusCreated, res[0])
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) error {
	coll, id := r.PathValue("c"), r.PathValue("id")
	if at := r.URL.Query().Get("at"); at != "" {
		seq, err := strconv.ParseInt(at, 10, 64)
		if err != nil || seq < 1 {
			return mantle.Errorf(mantle.Invalid, "query.invalid_at", "at must be an event sequence number, 1 or more")
		}
		raw, err := h.Engine.GetAt(r.Context(), coll, id, seq)
		if err != nil {
			return err
		}
		var v struct{ Version int64 }
		json.Unmarshal(raw, &v)
		w.Header().Set("ETag", `"`+strconv.FormatInt(v.Version, 10)+`"`)
		return writeJSON(w, http.StatusOK, raw)
	}
	c, rec, err := h.Engine.Get(r.Context(), coll, id)
	if err != nil {
		return err
	}
	return h.writeRecord(w, http.StatusOK, c, rec)
}

// ifMatch reads If-Match: "3", W/"3" or 3; * or nothing means any version.
func ifMatch(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	v = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, mantle.Errorf(mantle.Invalid, "request.invalid_if_match", `If-Match must be a record version in quotes, such as "3"`)
	}
	return n, nil
}

func (h *handler) update(w http.ResponseWriter, r *http.Request) error {
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	data, err := gateway.ReadObject(r)
	if err != nil {
		return err
	}
	res, err := h.Engine.Write(r.Context(), []engine.Op{{Kind: engine.Update, Collection: r.PathValue("c"),
		ID: r.PathValue("id"), Data: data, IfMatch: version}})
	if err != nil {
		return err
	}
	setSeq(w, res)
	return h.writeResult(w, http.StatusOK, res[0])
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) error {
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	res, err := h.Engine.Write(r.Context(), []engine.Op{{Kind: engine.Delete, Collection: r.PathValue("c"),
		ID: r.PathValue("id"), IfMatch: version}})
	if err != nil {
		return err
	}
	setSeq(w, res)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) error {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return mantle.Errorf(mantle.Invalid, "query.malformed", "the query string is malformed: %v", err)
	}
	p, err := h.Engine.List(r.Context(), r.PathValue("c"), params)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p.AppendJSON(make([]byte, 0, 768*max(len(p.Records), len(p.JSON))+128)))
}

// setSeq sets Mantle-Seq to the sequence of the write's last event, so a
// client can resume a stream or read its own write from that point.
func setSeq(w http.ResponseWriter, res []engine.Result) {
	if len(res) > 0 {
		w.Header().Set("Mantle-Seq", strconv.FormatInt(res[len(res)-1].Seq, 10))
	}
}
