package helper

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The helper encodes its Reply by hand; the parent decodes it with
// encoding/json and must get the same Reply back.
func TestReplyLineRoundTrip(t *testing.T) {
	for _, r := range []Reply{
		{PID: 1},
		{PID: 4242, Facts: json.RawMessage(`{"dev":4,"ino":4026531838}`)},
		{PID: -1, Facts: json.RawMessage(`"a \"quoted\" \u00e9 string"`)},
		{PID: 7, Err: &Error{Op: "sethostname", Errno: 1, Msg: "operation not permitted"}},
		{PID: 7, Err: &Error{Msg: "clone(CLONE_NEWUTS): \x00\t\"<>&\u2028 invalid \xff byte", CloneFlags: 1 << 26}},
	} {
		line, err := r.appendLine(nil)
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
			t.Errorf("%q is not one line", line)
		}
		var got Reply
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		want := r
		if want.Err != nil && !strings.Contains(want.Err.Msg, "\xff") {
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%q decodes to %+v, want %+v", line, got, want)
			}
		} else if got.PID != want.PID || !bytes.Equal(got.Facts, want.Facts) || (got.Err == nil) != (want.Err == nil) {
			t.Errorf("%q decodes to %+v, want %+v", line, got, want)
		}
	}
	if _, err := (Reply{Facts: json.RawMessage(`{"open`)}).appendLine(nil); err == nil {
		t.Error("invalid facts were encoded")
	}
}

// decodeRequest reads what RequestLine writes, and agrees with
// encoding/json on anything both accept.
func TestRequestDecode(t *testing.T) {
	line, err := RequestLine(Spec{Action: "uts.hostname", Args: map[string]any{"name": "x", "n": 3}, Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{
		string(line) + `{"action":"second"}`,
		`{"action":"a","args":null,"hold":false,"extra":{"x":[1,2,{"y":null}]}}`,
		` { "hold" : true , "action" : "b" , "args" : [1, "two"] } `,
		`{"action":null}`,
		`{}`,
	}
	for _, in := range inputs {
		checkRequestDecode(t, []byte(in), true)
	}
	for _, in := range []string{``, `[]`, `{"action":1}`, `{"hold":"yes"}`, `{"action":"a"`, `{"args":}`} {
		var r Request
		if err := r.decode(json.NewDecoder(strings.NewReader(in))); err == nil {
			t.Errorf("%q decoded without error to %+v", in, r)
		}
	}
}

func checkRequestDecode(t *testing.T, in []byte, mustDecode bool) {
	t.Helper()
	var got Request
	err := got.decode(json.NewDecoder(bytes.NewReader(in)))
	if err != nil {
		if mustDecode {
			t.Errorf("%q: %v", in, err)
		}
		return
	}
	var want Request
	// The first value only, as the helper reads one line.
	if err := json.NewDecoder(bytes.NewReader(in)).Decode(&want); err != nil {
		return
	}
	if got.Action != want.Action || got.Hold != want.Hold || !bytes.Equal(compact(got.Args), compact(want.Args)) {
		t.Errorf("%q: decoded %+v, encoding/json says %+v", in, got, want)
	}
}

func compact(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// FuzzRequestDecode: no input panics the helper's decoder, and what it
// accepts, encoding/json reads the same way (encoding/json also matches
// keys case-insensitively, which the parent never needs: such inputs are
// skipped).
func FuzzRequestDecode(f *testing.F) {
	f.Add([]byte(`{"action":"prop.ns-id","args":"uts"}`))
	f.Add([]byte(`{"action":"a","args":{"k":[1,2]},"hold":true}`))
	f.Add([]byte(`{"x":null}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		if bytes.Contains(bytes.ToLower(in), []byte("action")) && !bytes.Contains(in, []byte(`"action"`)) ||
			bytes.Contains(bytes.ToLower(in), []byte("hold")) && !bytes.Contains(in, []byte(`"hold"`)) ||
			bytes.Contains(bytes.ToLower(in), []byte("args")) && !bytes.Contains(in, []byte(`"args"`)) {
			t.Skip("encoding/json matches keys without case")
		}
		checkRequestDecode(t, in, false)
	})
}
