package mail

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
)

// The mails' texts: sign-up verification and forgotten password, embedded
// into the binary (edit templates/*.txt and rebuild; docs/email.md).

//go:embed templates/*.txt
var templateFS embed.FS

var templates = template.Must(template.New("").Option("missingkey=error").ParseFS(templateFS, "templates/*.txt"))

// Fields are the fields a template may use.
type Fields struct {
	ServerName, ServerBaseURL, UserEmail, BrowserIdentifier, IPAddress string
	VerificationCode, VerifyURL, VerificationExpiry                    string
}

// Render fills template name ("signup.txt", "forgotpass.txt"). Its first
// line is "Subject: …", then a blank line, then the body.
func Render(name string, f Fields) (subject, body string, err error) {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, f); err != nil {
		return "", "", fmt.Errorf("mail: template %s: %w", name, err)
	}
	head, rest, ok := strings.Cut(b.String(), "\n")
	subject, hasSubject := strings.CutPrefix(head, "Subject: ")
	if !ok || !hasSubject || HasControl(subject) {
		return "", "", fmt.Errorf("mail: template %s: first line must be 'Subject: …'", name)
	}
	return subject, strings.TrimLeft(rest, "\r\n"), nil
}

// HasControl reports characters that could end a header line or hide text
// in one: C0 controls, DEL, C1 controls, and the Unicode line separators.
func HasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == '\u2028' || r == '\u2029' {
			return true
		}
	}
	return false
}
