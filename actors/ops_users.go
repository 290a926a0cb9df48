package actors

// Operations on users: lookups by email, edits of a user record, password attempts.

// userOps lists the operations of this file for the codec (ops.go).
var userOps = []broadcastOp{}
