package envelope

import (
	"bytes"
	"testing"
)

// FuzzDecode: any input either fails with an error or decodes to a valid
// envelope that encodes and decodes to itself; Decode never panics.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"a","robot":"r","message":{"text":{"content":"hi"}},"created_at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"id":"a","robot":"r","message":{"markdown":{"title":"t","text":"# x"}},"at":{"mobiles":["1"]},"created_at":"2026-01-01T00:00:00Z","labels":{"k":"v"}}`))
	f.Add([]byte(`{"id":"a","robot":"r","message":{"actionCard":{"title":"t","text":"x","btns":[{"title":"b","actionURL":"https://e.com"}]}},"created_at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"id":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("Decode returned an invalid envelope: %v", err)
		}
		enc, err := Encode(e)
		if err != nil {
			t.Fatalf("Encode of a decoded envelope: %v", err)
		}
		e2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode of an encoded envelope: %v", err)
		}
		enc2, err := Encode(e2)
		if err != nil {
			t.Fatalf("Encode again: %v", err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzSplit: every split of a text message yields valid parts whose content,
// without the markers, is the original.
func FuzzSplit(f *testing.F) {
	f.Add("line one\nline two\n", 300)
	f.Add("磁盘已满，请立即处理。", 290)
	f.Fuzz(func(t *testing.T, content string, limit int) {
		if limit < 280 || limit > 2000 || len(content) > 20000 {
			t.Skip()
		}
		e := New("r", Message{Text: &Text{Content: content}}, WithID("fz"))
		if e.Validate() != nil && contentSize(e.Message, nil) <= limit {
			t.Skip() // invalid for another reason (e.g. blank content)
		}
		parts, err := Split(e, limit)
		if err != nil {
			return
		}
		var got string
		for i, p := range parts {
			if err := p.Validate(); err != nil {
				t.Fatalf("part %d invalid: %v", i+1, err)
			}
			c := p.Message.Text.Content
			if len(parts) > 1 {
				marker := "\n(" + itoa(i+1) + "/" + itoa(len(parts)) + ")"
				if len(c) < len(marker) || c[len(c)-len(marker):] != marker {
					t.Fatalf("part %d lacks its marker %q: %q", i+1, marker, c)
				}
				c = c[:len(c)-len(marker)]
			}
			got += c
		}
		if got != content {
			t.Fatalf("parts do not add up to the original")
		}
	})
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
