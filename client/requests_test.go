package client_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/wire"
)

// TestRequestMethods calls every request method of Client and checks that
// together they send exactly the types of RequestTypes, one method each.
// The server's side (httpfront's TestClientRequestTypes) checks that
// RequestTypes and LegacyRequestTypes are the server's table.
func TestRequestMethods(t *testing.T) {
	key, err := wire.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	codec, err := wire.NewCodec([]string{key}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		sent string
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env struct {
			Request string `json:"request"`
		}
		plain, err := codec.Open(body)
		if err == nil {
			err = json.Unmarshal(plain, &env)
		}
		if err != nil {
			t.Errorf("server: request does not open: %v", err)
		}
		mu.Lock()
		sent = env.Request
		mu.Unlock()
		http.Error(w, "HTTP 400: test", http.StatusBadRequest)
	}))
	defer ts.Close()
	c, err := client.New(ts.URL, key)
	if err != nil {
		t.Fatal(err)
	}

	want := reflect.TypeOf((func(context.Context, client.Body) (*client.Response, error))(nil))
	cv := reflect.ValueOf(c)
	methodOf := map[string]string{} // request type -> method
	for i := range cv.NumMethod() {
		name := cv.Type().Method(i).Name
		m := cv.Method(i)
		if m.Type() != want {
			continue // Request, RequestWithID, WithHTTPClient
		}
		mu.Lock()
		sent = ""
		mu.Unlock()
		m.Call([]reflect.Value{reflect.ValueOf(context.Background()), reflect.ValueOf(client.Body{})})
		mu.Lock()
		reqType := sent
		mu.Unlock()
		if reqType == "" {
			t.Errorf("%s sent no request", name)
			continue
		}
		if other, dup := methodOf[reqType]; dup {
			t.Errorf("%s and %s both send %s", other, name, reqType)
		}
		methodOf[reqType] = name
		if !slices.Contains(client.RequestTypes, reqType) {
			t.Errorf("%s sends %s; not in RequestTypes", name, reqType)
		}
	}
	for _, rt := range client.RequestTypes {
		if methodOf[rt] == "" {
			t.Errorf("RequestTypes lists %s; no method sends it", rt)
		}
	}
	for _, list := range [][]string{client.RequestTypes, client.LegacyRequestTypes} {
		if !slices.IsSorted(list) || len(slices.Compact(slices.Clone(list))) != len(list) {
			t.Errorf("list not sorted or has duplicates: %v", list)
		}
	}
	for _, rt := range client.LegacyRequestTypes {
		if slices.Contains(client.RequestTypes, rt) {
			t.Errorf("%s is in both RequestTypes and LegacyRequestTypes", rt)
		}
	}
}
