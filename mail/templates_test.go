package mail

import (
	"strings"
	"testing"
)

func TestRenderTemplates(t *testing.T) {
	for _, name := range []string{"signup.txt", "forgotpass.txt"} {
		subject, body, err := Render(name, Fields{ServerName: "S", ServerBaseURL: "https://s", UserEmail: "u@s",
			BrowserIdentifier: "B", IPAddress: "1.2.3.4", VerificationCode: "CODE", VerifyURL: "https://s/v", VerificationExpiry: "T"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.HasPrefix(subject, "[S] Please verify your ") {
			t.Errorf("%s: subject %q", name, subject)
		}
		for _, want := range []string{"CODE", "https://s/v", "u@s", "1.2.3.4", "before T", "S admins"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: body lacks %q", name, want)
			}
		}
	}
}

func TestHasControl(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"Example Server", false},
		{"Ünïcödé name", false},
		{"a\r\nBcc: x", true},
		{"a\nb", true},
		{"tab\there", true},
		{"nul\x00", true},
		{"line\u2028sep", true},
		{"c1\u0085", true},
	}
	for _, tc := range tests {
		if got := HasControl(tc.in); got != tc.want {
			t.Errorf("HasControl(%q) = %v; want %v", tc.in, got, tc.want)
		}
	}
}
