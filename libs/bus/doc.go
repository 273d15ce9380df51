// Package bus is pulpdist's contract on NATS JetStream: subject names, stream,
// key-value and object-store layout, the versioned message types that travel
// between services, CloudEvents publishing, and a consumer loop that decides
// acks by error class.
//
// Every subject is built by one function here; no service concatenates
// subject strings itself. api/asyncapi.yaml documents the same contract for
// other tools.
package bus
