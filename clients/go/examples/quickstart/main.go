// Command quickstart walks through the ovms client against the built-in demo:
//
//	ovms-grpc --demo --port 9000 &
//	go run ./examples/quickstart -addr localhost:9000
//
// It prints the server's health, the output of model dummy for versions 1
// and 2 (b+1 and b+2), and a short chat streamed from the demo LLM (random
// weights: the text is nonsense, the token counts are real).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/protobuf/proto"

	generationv1 "github.com/ovms-grpc/ovms-grpc/clients/go/gen/ovms/generation/v1"
	"github.com/ovms-grpc/ovms-grpc/clients/go/ovms"
)

func main() {
	addr := flag.String("addr", "localhost:9000", "gRPC address of the server")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, *addr, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string, w io.Writer) error {
	client, err := ovms.Dial(addr)
	if err != nil {
		return err
	}
	defer client.Close()

	serving, err := client.Health(ctx, "")
	if err != nil {
		return err
	}
	if !serving {
		return fmt.Errorf("%s is up but not SERVING yet (models still loading?)", addr)
	}
	fmt.Fprintln(w, "health: SERVING")

	b := []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	for _, version := range []string{"1", "2"} {
		out, err := client.Infer(ctx, "dummy", version, ovms.NewTensor("b", []int64{1, 10}, b))
		if err != nil {
			return err // an *ovms.Error: status.Code(err) is the server's code
		}
		a, err := out["a"].AsFloat32()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "dummy v%s: a = %v\n", version, a)
	}

	req := &generationv1.ChatRequest{
		Model:        "llm",
		Messages:     []*generationv1.ChatMessage{{Role: "user", Content: "Say hello."}},
		Sampling:     &generationv1.SamplingParams{MaxTokens: proto.Uint32(8), IgnoreEos: true},
		IncludeUsage: true, // a last message then reports the token counts
	}
	fmt.Fprint(w, "llm: ")
	for resp, err := range client.Chat(ctx, req) {
		if err != nil {
			return err
		}
		for _, choice := range resp.GetChoices() {
			fmt.Fprint(w, choice.GetContent())
		}
		if u := resp.GetUsage(); u != nil {
			fmt.Fprintf(w, "\nusage: prompt_tokens=%d completion_tokens=%d\n", u.GetPromptTokens(), u.GetCompletionTokens())
		}
	}
	return nil
}
