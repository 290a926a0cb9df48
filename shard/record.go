package shard

import "encoding/json"

// encodeRecord marshals a record to its stored JSON form. Only a raw JSON
// field can make json.Marshal fail; such a field is reset to null rather
// than panicking inside a shard actor (which would lose the shard's memory).
func encodeRecord(v any, raw ...*json.RawMessage) []byte {
	b, err := json.Marshal(v)
	if err == nil {
		return b
	}
	for _, r := range raw {
		if !json.Valid(*r) {
			*r = nil
		}
	}
	b, err = json.Marshal(v)
	if err != nil {
		return []byte("null") // unreachable: every field is now marshalable
	}
	return b
}
