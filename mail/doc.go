// Package mail sends the server's mail: a small pool of protoactor-go
// worker actors with a bounded queue (Mailer), the SMTP client with its TLS
// policy (STARTTLS required except to a loopback relay), and the texts of
// the sign-up and forgotten-password mails (templates/*.txt, embedded).
//
// This package imports none of the server's core (docs/design.md,
// "Packages").
package mail
