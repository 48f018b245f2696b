package ovms

import (
	"context"
	"errors"
	"io"
	"iter"

	generationv1 "github.com/ovms-grpc/ovms-grpc/clients/go/gen/ovms/generation/v1"
)

// Chat streams a chat completion. Each iteration yields one server message:
// first the role, then text deltas, then (with req.IncludeUsage) a last
// message carrying only Usage. A failure is yielded once, as an *Error, and
// ends the sequence.
//
//	for resp, err := range client.Chat(ctx, req) {
//		if err != nil { return err }
//		for _, choice := range resp.GetChoices() { fmt.Print(choice.GetContent()) }
//	}
//
// Leaving the loop early cancels the call, so the server stops generating.
func (c *Client) Chat(ctx context.Context, req *generationv1.ChatRequest) iter.Seq2[*generationv1.ChatResponse, error] {
	return func(yield func(*generationv1.ChatResponse, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.Generation.Chat(ctx, req)
		if err != nil {
			yield(nil, wrap("Chat", err, nil))
			return
		}
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				// The trailer is complete once Recv has failed.
				yield(nil, wrap("Chat", err, stream.Trailer()))
				return
			}
			if !yield(resp, nil) {
				return
			}
		}
	}
}
