// Package ovms is a small Go client for ovms-grpc and OpenVINO Model Server.
//
// It wraps the generated stubs in ../gen for the common calls (KServe v2
// inference with typed tensors, model metadata, gRPC health, streamed chat)
// and exposes the stubs themselves for everything else: Client.KServe,
// Client.TFS, Client.TFSModels, Client.Generation and Client.Admin share one
// connection.
//
// Every failed call returns an *Error that keeps the server's gRPC status, so
// status.Code(err) reports the code the server sent (codes.NotFound for an
// unknown model, codes.InvalidArgument for a bad input, ...).
package ovms

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/ovms-grpc/ovms-grpc/clients/go/gen/inference"
	adminv1 "github.com/ovms-grpc/ovms-grpc/clients/go/gen/ovms/admin/v1"
	generationv1 "github.com/ovms-grpc/ovms-grpc/clients/go/gen/ovms/generation/v1"
	"github.com/ovms-grpc/ovms-grpc/clients/go/gen/tensorflow_serving/apis"
)

// Client talks to one server over one gRPC connection. It is safe for
// concurrent use.
type Client struct {
	conn *grpc.ClientConn

	KServe     inference.GRPCInferenceServiceClient // KServe v2 (package inference)
	TFS        apis.PredictionServiceClient         // TensorFlow Serving Predict and GetModelMetadata
	TFSModels  apis.ModelServiceClient              // TensorFlow Serving GetModelStatus
	Generation generationv1.GenerationServiceClient // chat, completions, embeddings, rerank
	Admin      adminv1.AdminServiceClient           // server status, config reload, metrics
	health     healthpb.HealthClient
}

// Dial returns a client for addr ("host:port"). The connection is plaintext
// unless opts set other transport credentials (later options win). Like
// grpc.NewClient, Dial does not connect: the first call does, so a server
// that is not up yet surfaces as codes.Unavailable from that call.
func Dial(addr string, opts ...grpc.DialOption) (*Client, error) {
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{
		conn:       conn,
		KServe:     inference.NewGRPCInferenceServiceClient(conn),
		TFS:        apis.NewPredictionServiceClient(conn),
		TFSModels:  apis.NewModelServiceClient(conn),
		Generation: generationv1.NewGenerationServiceClient(conn),
		Admin:      adminv1.NewAdminServiceClient(conn),
		health:     healthpb.NewHealthClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the underlying connection, for stubs this package does not wrap.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Health reports whether service is SERVING per grpc.health.v1: "" is the
// whole server; a service name such as "inference.GRPCInferenceService" asks
// about that service only. The server reports NOT_SERVING until every model
// has loaded.
func (c *Client) Health(ctx context.Context, service string, opts ...grpc.CallOption) (bool, error) {
	var trailer metadata.MD
	resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service}, append(opts, grpc.Trailer(&trailer))...)
	if err != nil {
		return false, wrap("Health", err, trailer)
	}
	return resp.GetStatus() == healthpb.HealthCheckResponse_SERVING, nil
}

// Metadata describes a model's inputs and outputs (KServe ModelMetadata).
// version "" means the default version, the highest one served.
func (c *Client) Metadata(ctx context.Context, model, version string) (*inference.ModelMetadataResponse, error) {
	var trailer metadata.MD
	resp, err := c.KServe.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: model, Version: version}, grpc.Trailer(&trailer))
	if err != nil {
		return nil, wrap("ModelMetadata", err, trailer)
	}
	return resp, nil
}

// Infer runs one KServe ModelInfer call and returns its outputs by name.
// version "" means the default version. Inputs travel as raw little-endian
// bytes (raw_input_contents), the compact form that OVMS answers in kind.
// Shapes and element counts are checked by the server, which rejects a
// mismatch with codes.InvalidArgument.
func (c *Client) Infer(ctx context.Context, model, version string, inputs ...Tensor) (map[string]Output, error) {
	req := &inference.ModelInferRequest{ModelName: model, ModelVersion: version}
	for _, in := range inputs {
		req.Inputs = append(req.Inputs, &inference.ModelInferRequest_InferInputTensor{
			Name: in.Name, Datatype: in.Datatype, Shape: in.Shape,
		})
		req.RawInputContents = append(req.RawInputContents, in.Raw)
	}
	var trailer metadata.MD
	resp, err := c.KServe.ModelInfer(ctx, req, grpc.Trailer(&trailer))
	if err != nil {
		return nil, wrap("ModelInfer", err, trailer)
	}
	return outputs(resp), nil
}
