package wire

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

// A fixed test vector: a session-exists request sealed in 2020 with a fixed
// key.
const (
	vectorKey   = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	vectorPlain = `{"request": "session-exists", "body": {"session_token": "abc"}, "reqid": 1, "client_ipaddr": "1.2.3.4"}`
	vectorBody  = "Z0FBQUFBQmZYaEFBQUFFQ0F3UUZCZ2NJQ1FvTERBME9EXzRRLU1Qd2pJdlI2RHN0RXFmN2otblQzS3E1ZnhScVROaDlrY3BycDlXUTJNQlplSkJCYVRkVDMzaURuUVlTaUZZWkxGZUhTQ2xpTDBISTZFbVV6UG8wOFhVcFBNU1BGOTlOUlFOYjhybmpvaVU2eDZWX1NuNV9NUVRmdndGX1hVWjBqTWMxQ0lPMWRpenJHUjdnb1JMSnBJMi1qMmx6b09wLVFFSk5qU1d3X0g2M1BBTWhTak1CcjNFRHphOU5BZz09"
)

func TestOpenSpecVector(t *testing.T) {
	c, err := NewCodec([]string{vectorKey}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{vectorBody, vectorBody + "\n", "  " + vectorBody + "\r\n"} {
		got, err := c.Open([]byte(body))
		if err != nil {
			t.Fatalf("Open(%.20q…) error %v; want the vector's plaintext", body, err)
		}
		if string(got) != vectorPlain {
			t.Errorf("Open = %q; want %q", got, vectorPlain)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	fresh, _ := NewCodec([]string{vectorKey}, 2*time.Minute)
	other, _ := GenerateKey()
	foreign, _ := NewCodec([]string{other}, 0)
	good, _ := fresh.Seal([]byte(`{"a":1}`))
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)/2] ^= 1
	rawTok, _ := base64.StdEncoding.DecodeString(string(good))
	tests := []struct {
		name string
		c    *Codec
		body []byte
	}{
		{"empty", fresh, nil},
		{"garbage", fresh, []byte("not base64 at all!")},
		{"raw fernet token without outer base64", fresh, rawTok},
		{"tampered", fresh, tampered},
		{"foreign key", foreign, good},
		{"stale 2020 token with a freshness window", fresh, []byte(vectorBody)},
		{"short token", fresh, []byte(base64.StdEncoding.EncodeToString([]byte("gAAAAABfXhAA")))},
		{"wrong padding", fresh, good[:len(good)-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tt.c.Open(tt.body); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("Open = %q, %v; want ErrUnauthenticated", got, err)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, _ := GenerateKey()
	newKey, _ := GenerateKey()
	before, _ := NewCodec([]string{oldKey}, time.Minute)
	after, _ := NewCodec([]string{newKey, oldKey}, time.Minute)
	newOnly, _ := NewCodec([]string{newKey}, time.Minute)
	msg := []byte(`{"x":"y"}`)
	b, _ := before.Seal(msg)
	if got, err := after.Open(b); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("second key did not open: %q, %v", got, err)
	}
	b2, _ := after.Seal(msg)
	if got, err := newOnly.Open(b2); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("first key did not seal: %q, %v", got, err)
	}
	if _, err := before.Open(b2); err == nil {
		t.Fatalf("old-only codec opened a body sealed with the new key")
	}
}

func TestFreshness(t *testing.T) {
	c, _ := NewCodec([]string{vectorKey}, 2*time.Minute)
	msg := []byte(`{"a":1}`)
	for _, tt := range []struct {
		name string
		age  time.Duration
		ok   bool
	}{
		{"now", 0, true},
		{"a minute old", time.Minute, true},
		{"three minutes old", 3 * time.Minute, false},
		{"30 s in the future (skew)", -30 * time.Second, true},
		{"two minutes in the future", -2 * time.Minute, false},
	} {
		b, _ := c.SealAt(msg, time.Now().Add(-tt.age))
		_, err := c.Open(b)
		if (err == nil) != tt.ok {
			t.Errorf("%s: Open error %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func FuzzOpen(f *testing.F) {
	c, _ := NewCodec([]string{vectorKey}, 0)
	good, _ := c.Seal([]byte(`{"request":"session-exists","body":{},"reqid":1}`))
	f.Add(good)
	f.Add([]byte(vectorBody))
	f.Add([]byte("gAAAAA"))
	f.Add([]byte(base64.StdEncoding.EncodeToString(make([]byte, 73))))
	f.Fuzz(func(t *testing.T, body []byte) {
		plain, err := c.Open(body)
		if err == nil && plain == nil {
			t.Fatalf("Open(%q) returned nil plaintext and no error", body)
		}
	})
}

// answerPlain is the size and shape of a session-exists answer (about 800
// bytes), the body the server seals most often.
var answerPlain = []byte(`{"success": true, "response": {"session_info": {"session_token": "dGhpcyBpcyBhIHNlc3Npb24gdG9rZW4gb2YgNDMgY2g", "ip_address": "203.0.113.17", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", "created": "2026-12-01T23:59:59.123456", "expires": "2026-12-08T23:59:59.123456", "extra_info_json": {"source": "login"}, "user_id": 4242}, "user_info": {"user_id": 4242, "system_id": "9c1e0b2e-7d7a-4f3c-9a61-2b8e5d0f1a33", "full_name": "A. N. Example", "email": "someone@example.org", "is_active": true, "user_role": "authenticated", "emailverify_sent_datetime": "2026-11-30T10:00:00", "last_login_try": "2026-12-01T23:59:58.000001", "last_login_success": "2026-12-01T23:59:59.123456", "created_on": "2025-01-01T00:00:00", "last_updated": "2026-12-01T23:59:59.123456"}}, "messages": ["Session found."], "reqid": 123456789}`)

func benchmarkOpen(b *testing.B, plain []byte) {
	c, _ := NewCodec([]string{vectorKey}, 0)
	body, _ := c.Seal(plain)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Open(body); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkSeal(b *testing.B, plain []byte) {
	c, _ := NewCodec([]string{vectorKey}, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Seal(plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B)       { benchmarkOpen(b, []byte(vectorPlain)) }
func BenchmarkOpenAnswer(b *testing.B) { benchmarkOpen(b, answerPlain) }
func BenchmarkSeal(b *testing.B)       { benchmarkSeal(b, []byte(vectorPlain)) }
func BenchmarkSealAnswer(b *testing.B) { benchmarkSeal(b, answerPlain) }

func BenchmarkAppendTime(b *testing.B) {
	times := []time.Time{time.Unix(1764633599, 123456000), time.Unix(1764633599, 0)}
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		for _, t := range times {
			dst = AppendTime(dst[:0], t)
		}
	}
}

func TestAppendFormatTime(t *testing.T) {
	for _, tm := range []time.Time{time.Unix(0, 0), time.Unix(1700000000, 123456789), time.Unix(1700000000, 999), time.Date(2026, 12, 1, 23, 59, 59, 1000, time.FixedZone("x", 3600))} {
		if got, want := string(AppendFormatTime([]byte("p:"), tm)), "p:"+FormatTime(tm); got != want {
			t.Errorf("AppendFormatTime(%v) = %q; want %q", tm, got, want)
		}
	}
}
