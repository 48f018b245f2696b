package ovms

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// errorKindKey is the trailing-metadata key in which ovms-grpc names the OVMS
// error behind a status (e.g. MODEL_VERSION_MISSING): finer than the code,
// which several kinds share.
const errorKindKey = "ovms-error-kind"

// Error is a failed call. It carries the server's status unchanged, so
// status.Code(err) and status.FromError(err) work on it (also when wrapped),
// and errors.As(err, &e) gives the OVMS error kind.
type Error struct {
	Method string // the RPC, e.g. "ModelInfer"
	Kind   string // OVMS error kind, e.g. "MODEL_NAME_MISSING"; "" when the server sent none
	status *status.Status
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("ovms: %s: %s: %s", e.Method, e.status.Code(), e.status.Message())
	if e.Kind != "" {
		msg += " (" + e.Kind + ")"
	}
	return msg
}

// Code is the gRPC status code the call ended with.
func (e *Error) Code() codes.Code { return e.status.Code() }

// GRPCStatus makes status.Code and status.FromError see the server's status.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// wrap turns an RPC error into an *Error. Errors that never reached the
// server (a cancelled context, no connection) get their status from grpc too,
// e.g. codes.Canceled or codes.Unavailable.
func wrap(method string, err error, trailer metadata.MD) error {
	e := &Error{Method: method, status: status.Convert(err)}
	if kinds := trailer.Get(errorKindKey); len(kinds) > 0 {
		e.Kind = kinds[0]
	}
	return e
}
