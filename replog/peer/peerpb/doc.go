// Package peerpb holds the protobuf messages and the gRPC service of the
// replica-to-replica protocol, generated from peer.proto by protoc-gen-go and
// protoc-gen-go-grpc (see the Makefile's proto target). Only package
// replog/peer uses it. Do not edit the generated files.
package peerpb
