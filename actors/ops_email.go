package actors

// Operations on the email flows' records: emailed codes and the sent and verified marks.

// emailOps lists the operations of this file for the codec (ops.go).
var emailOps = []broadcastOp{}
