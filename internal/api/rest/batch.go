package rest

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/gateway"
)

func (h *handler) batch(w http.ResponseWriter, r *http.Request) error {
	body, err := gateway.ReadObject(r)
	if err != nil {
		return err
	}
	for k := range body {
		if k != "ops" {
			return mantle.FieldError("request.unknown_field", fmt.Sprintf("unknown field %q; the body is {\"ops\": [...]}", k), map[string]string{k: "unknown field"})
		}
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body["ops"], &raws); err != nil || len(raws) == 0 {
		return mantle.FieldError("batch.invalid", "ops must be a non-empty list", map[string]string{"ops": "must be a non-empty list"})
	}
	if len(raws) > engine.MaxBatchOps {
		return mantle.Errorf(mantle.Invalid, "batch.too_large", "a batch takes at most %d ops", engine.MaxBatchOps)
	}
	ops := make([]engine.Op, len(raws))
	for i, raw := range raws {
		if ops[i], err = decodeOp(raw, i); err != nil {
			return err
		}
	}
	res, err := h.Engine.WriteBatch(r.Context(), ops)
	if err != nil {
		return err
	}
	setSeq(w, res)
	b := []byte(`{"results":[`)
	for i, x := range res {
		if i > 0 {
			b = append(b, ',')
		}
		if x.Record == nil {
			b = append(b, "null"...)
		} else {
			b = x.Collection.AppendJSON(b, x.Record, nil, nil)
		}
	}
	return writeJSON(w, http.StatusOK, append(b, "]}"...))
}

func decodeOp(raw json.RawMessage, i int) (engine.Op, error) {
	at := fmt.Sprintf("ops[%d]", i)
	fail := func(field, msg string) error {
		return mantle.FieldError("batch.invalid_op", fmt.Sprintf("%s.%s: %s", at, field, msg), map[string]string{at + "." + field: msg})
	}
	m, err := gateway.DecodeObject(raw, at)
	if err != nil {
		return engine.Op{}, err
	}
	var op engine.Op
	for k, v := range m {
		switch k {
		case "op":
			if json.Unmarshal(v, &op.Kind) != nil {
				return op, fail(k, "must be create, update or delete")
			}
		case "collection":
			if json.Unmarshal(v, &op.Collection) != nil {
				return op, fail(k, "must be a string")
			}
		case "id":
			if json.Unmarshal(v, &op.ID) != nil {
				return op, fail(k, "must be a string")
			}
		case "data":
			if op.Data, err = gateway.DecodeObject(v, at+".data"); err != nil {
				return op, err
			}
		case "ifMatch":
			if json.Unmarshal(v, &op.IfMatch) != nil || op.IfMatch < 0 {
				return op, fail(k, "must be a record version")
			}
		default:
			return op, fail(k, "unknown field")
		}
	}
	switch op.Kind {
	case engine.Create, engine.Update:
		if op.Data == nil {
			return op, fail("data", "required")
		}
	case engine.Delete:
	default:
		return op, fail("op", "must be create, update or delete")
	}
	if op.Collection == "" {
		return op, fail("collection", "required")
	}
	if op.Kind != engine.Create && op.ID == "" {
		return op, fail("id", "required")
	}
	if op.Kind == engine.Create && op.ID != "" {
		// A create's op-level id chooses the new record's id, as data.id does.
		idJSON, _ := json.Marshal(op.ID)
		if given, ok := op.Data["id"]; ok && string(given) != string(idJSON) {
			return op, fail("id", "differs from data.id; give the id once")
		}
		op.Data["id"] = idJSON
		op.ID = ""
	}
	return op, nil
}
