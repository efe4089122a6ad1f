package mantle

import (
	"encoding/json"
	"reflect"
	"testing"
)

var invocations = []string{
	`{"abi":1,"function":"score","trigger":"http","request":{"method":"POST","path":"/fn/score","query":"a=1&b=%20","params":{"id":"x"},"headers":{"Content-Type":"application/json","X-A":"1, 2"},"body":"{\"account\":\"acc_1\",\"amount\":12.5}"},"caller":{"id":"u1","email":"a@b.co","roles":["admin","ops"]},"env":{"A":"b"}}`,
	`{"abi":1,"function":"count","trigger":"event","event":{"specversion":"1.0","id":"42","seq":42,"source":"/collections/posts","type":"record.created","subject":"r1","time":"2026-12-01T00:00:00Z","datacontenttype":"application/json","collection":"posts","actor":"fn:x","data":{"record":{"id":"r1","n":[1,2.5e3,true,null,{"a":"\u00e9\ud83d\ude00"}]}}},"caller":{"id":"fn:x"},"attempt":3}`,
	`{"abi":1,"function":"archive","trigger":"schedule","tick":{"cron":"0 3 * * *","at":"2026-12-01T03:00:00Z","catchUp":true},"caller":{}}`,
	`{"abi":1,"function":"f","trigger":"invoke","data":null,"caller":{"roles":null},"request":null}`,
	` { "abi" : 1 , "trigger" : "invoke" , "data" : [ 1 , "x" ] , "future" : {"nested":[{}]} } `,
	`{"request":{"body":"tab\there \"quoted\" \\ slash\/ \b\f\n\r \u0001 é 日本 \ud800 end","bodyBase64":"AAE="}}`,
}

func TestDecodeInvocationMatchesJSON(t *testing.T) {
	for _, in := range invocations {
		var fast, std Invocation
		if err := decodeInvocation([]byte(in), &fast); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if err := json.Unmarshal([]byte(in), &std); err != nil {
			t.Fatal(err)
		}
		normalize(&fast)
		normalize(&std)
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("%s:\nfast %+v\nstd  %+v", in, fast, std)
		}
	}
}

// normalize compacts raw JSON members, which the two keep with
// different spacing.
func normalize(inv *Invocation) {
	compact := func(r json.RawMessage) json.RawMessage {
		if r == nil {
			return nil
		}
		var v any
		json.Unmarshal(r, &v)
		b, _ := json.Marshal(v)
		return b
	}
	inv.Data = compact(inv.Data)
	if inv.Event != nil {
		inv.Event.Data = compact(inv.Event.Data)
	}
}

func FuzzDecodeInvocation(f *testing.F) {
	for _, in := range invocations {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, std Invocation
		errFast := decodeInvocation(b, &fast)
		errStd := json.Unmarshal(b, &std)
		if (errFast == nil) != (errStd == nil) {
			t.Fatalf("%q: fast %v, encoding/json %v", b, errFast, errStd)
		}
		if errStd != nil {
			return
		}
		normalize(&fast)
		normalize(&std)
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("%q:\nfast %+v\nstd  %+v", b, fast, std)
		}
	})
}

func TestAppendResultMatchesJSON(t *testing.T) {
	for _, r := range []*Result{
		{},
		{Status: 201, JSON: json.RawMessage(`{"a":1}`)},
		{Status: 200, Headers: map[string]string{"X-A": "1"}, Body: "<tag> & \"q\" \\ \n\t\x01 é \u2028 \xff"},
		{BodyBase64: "AAE="},
	} {
		var fromJSON, fromFast map[string]any
		std, _ := json.Marshal(r)
		json.Unmarshal(std, &fromJSON)
		fast := appendResult(nil, r)
		if err := json.Unmarshal(fast, &fromFast); err != nil {
			t.Fatalf("%q: %v", fast, err)
		}
		if !reflect.DeepEqual(fromJSON, fromFast) {
			t.Fatalf("fast %s\nstd  %s", fast, std)
		}
	}
}
