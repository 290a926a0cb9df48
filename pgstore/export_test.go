package pgstore

// SchemaV1 lets the migration test build a version 1 database as a build
// of that version made it.
var SchemaV1 = schemaV1
