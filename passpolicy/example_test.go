package passpolicy_test

import (
	"errors"
	"fmt"

	"github.com/authnzerver/authnzerver/passpolicy"
)

func ExamplePolicy_Check() {
	p, err := passpolicy.ParsePolicy("min_pass_length:12; max_unsafe_similarity:50; max_char_frequency:0.3; min_pwned_matches:25")
	if err != nil {
		panic(err) // a configuration error: refuse to start
	}
	ok, msgs := p.Check("testuser", "testuser@test.org", "Test User", "auth.example.org")
	fmt.Println(ok)
	for _, m := range msgs {
		fmt.Println(m)
	}
	// Output:
	// false
	// Your password is too short. It must have at least 12 characters.
	// Your password is too similar to either the domain name of this server or your own name or email address.
}

func ExampleValidateEmail() {
	for _, e := range []string{"Jane@Example.ORG", "admin@example.org", "jane@mailinator.com"} {
		err := passpolicy.ValidateEmail(e, passpolicy.BuiltinDisposable())
		fmt.Println(e, errors.Is(err, passpolicy.ErrInvalidEmail), passpolicy.NormalizeEmail(e))
	}
	// Output:
	// Jane@Example.ORG false jane@example.org
	// admin@example.org true admin@example.org
	// jane@mailinator.com true jane@mailinator.com
}

func ExampleCheckFullName() {
	for _, n := range []string{"J.Doe", "Jane Q. Public", "buy cheap.com now"} {
		fmt.Printf("%q %v\n", n, passpolicy.CheckFullName(passpolicy.NormalizeFullName(n)))
	}
	// Output:
	// "J.Doe" <nil>
	// "Jane Q. Public" <nil>
	// "buy cheap.com now" passpolicy: invalid full name: contains a domain name
}
