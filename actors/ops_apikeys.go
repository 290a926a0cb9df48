package actors

// Operations on API keys and the access checks.

// apiKeyOps lists the operations of this file for the codec (ops.go).
var apiKeyOps = []broadcastOp{}
