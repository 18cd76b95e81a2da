package deadletter_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/botrelay/botrelay/pkg/deadletter"
	"github.com/botrelay/botrelay/pkg/envelope"
)

// FuzzDecode: any input either fails with an error matching ErrMalformed
// or decodes to a record whose encoding decodes to the same encoding
// (a stable round trip); Decode never panics.
func FuzzDecode(f *testing.F) {
	env := envelope.New("ops", envelope.Message{Text: &envelope.Text{Content: "disk full"}}, envelope.WithID("e-1"))
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	for _, rec := range []deadletter.Record{
		{Envelope: env, Robot: "ops", Reason: deadletter.ReasonPermanent, Detail: "sign not match", Class: "permanent",
			HTTPStatus: 200, ErrCode: 310000, ErrMsg: "sign not match", Attempts: 1, FirstAttempt: at, LastAttempt: at,
			DeadAt: at, Worker: "w1", Subject: "botrelay.out.ops", Sequence: 7},
		{Raw: []byte("not an envelope\x00\xff"), Robot: "ops", Reason: deadletter.ReasonDecode, DeadAt: at, Subject: "botrelay.out.ops", Sequence: 1},
	} {
		data, err := deadletter.Encode(rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"robot":"r","reason":"exhausted","attempts":8,"dead_at":"2026-01-01T00:00:00+05:00","errcode":-1,"unknown":true}`))
	f.Add([]byte(`{"envelope":{"v":1},"raw":"AAEC","sequence":18446744073709551615}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"attempts":"8"}`))
	f.Add([]byte(`{"dead_at":"yesterday"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := deadletter.Decode(data)
		if err != nil {
			if !errors.Is(err, deadletter.ErrMalformed) {
				t.Fatalf("error does not match ErrMalformed: %v", err)
			}
			return
		}
		enc, err := deadletter.Encode(rec)
		if err != nil {
			t.Fatalf("Encode of a decoded record: %v", err)
		}
		rec2, err := deadletter.Decode(enc)
		if err != nil {
			t.Fatalf("Decode of an encoded record: %v\n%s", err, enc)
		}
		enc2, err := deadletter.Encode(rec2)
		if err != nil {
			t.Fatalf("Encode again: %v", err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
		if rec2.Sequence != rec.Sequence || rec2.Robot != rec.Robot || rec2.Reason != rec.Reason ||
			rec2.ErrCode != rec.ErrCode || !bytes.Equal(rec2.Raw, rec.Raw) || !rec2.DeadAt.Equal(rec.DeadAt) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, rec2)
		}
	})
}
