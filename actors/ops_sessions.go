package actors

// Operations on sessions: create, look up, edit, delete, and a user's sessions across shards.

// sessionOps lists the operations of this file for the codec (ops.go).
var sessionOps = []broadcastOp{}
