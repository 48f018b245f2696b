package ovms_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	generationv1 "github.com/ovms-grpc/ovms-grpc/clients/go/gen/ovms/generation/v1"
	"github.com/ovms-grpc/ovms-grpc/clients/go/gen/tensorflow/core/framework"
	"github.com/ovms-grpc/ovms-grpc/clients/go/gen/tensorflow_serving/apis"
	"github.com/ovms-grpc/ovms-grpc/clients/go/ovms"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// dummyInput is the demo model's input: b, FP32 [1,10]. Halves are exact in
// float32, so b+1 and b+2 can be compared with ==.
func dummyInput() []float32 {
	b := make([]float32, 10)
	for i := range b {
		b[i] = float32(i) * 0.5
	}
	return b
}

func plus(b []float32, n float32) []float32 {
	out := make([]float32, len(b))
	for i, v := range b {
		out[i] = v + n
	}
	return out
}

func TestHealth(t *testing.T) {
	ctx := testContext(t)
	for _, service := range []string{"", "inference.GRPCInferenceService"} {
		serving, err := client.Health(ctx, service)
		if err != nil || !serving {
			t.Errorf("Health(%q) = %v, %v; want true, nil", service, serving, err)
		}
	}
	// grpc.health.v1 answers NOT_FOUND for a service it does not know.
	if _, err := client.Health(ctx, "no.such.Service"); status.Code(err) != codes.NotFound {
		t.Errorf("Health(unknown service) error = %v; want code NotFound", err)
	}
}

func TestInferDummyVersions(t *testing.T) {
	ctx := testContext(t)
	b := dummyInput()
	// Version 1 adds 1, version 2 adds 2; "" is the default, the highest.
	for _, tc := range []struct {
		version string
		want    []float32
	}{{"1", plus(b, 1)}, {"2", plus(b, 2)}, {"", plus(b, 2)}} {
		out, err := client.Infer(ctx, "dummy", tc.version, ovms.NewTensor("b", []int64{1, 10}, b))
		if err != nil {
			t.Fatalf("Infer(dummy, version %q): %v", tc.version, err)
		}
		a, ok := out["a"]
		if !ok {
			t.Fatalf("version %q: no output a in %v", tc.version, out)
		}
		if a.Datatype != "FP32" || !slices.Equal(a.Shape, []int64{1, 10}) {
			t.Errorf("version %q: output a is %s %v; want FP32 [1 10]", tc.version, a.Datatype, a.Shape)
		}
		got, err := a.AsFloat32()
		if err != nil {
			t.Fatalf("version %q: AsFloat32: %v", tc.version, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("version %q: a = %v; want %v", tc.version, got, tc.want)
		}
	}
}

func TestInferErrors(t *testing.T) {
	ctx := testContext(t)
	ten := ovms.NewTensor("b", []int64{1, 10}, dummyInput())
	for _, tc := range []struct {
		name, model, version string
		input                ovms.Tensor
		code                 codes.Code
		kind                 string
	}{
		{"unknown model", "no_such_model", "", ten, codes.NotFound, "MODEL_NAME_MISSING"},
		{"unknown version", "dummy", "7", ten, codes.NotFound, "MODEL_VERSION_MISSING"},
		{"wrong shape", "dummy", "1", ovms.NewTensor("b", []int64{1, 5}, make([]float32, 5)), codes.InvalidArgument, "INVALID_SHAPE"},
		{"wrong datatype", "dummy", "1", ovms.NewTensor("b", []int64{1, 10}, make([]int32, 10)), codes.InvalidArgument, "INVALID_PRECISION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Infer(ctx, tc.model, tc.version, tc.input)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("error = %v; want code %v", err, tc.code)
			}
			var e *ovms.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *ovms.Error", err)
			}
			if e.Method != "ModelInfer" || e.Kind != tc.kind {
				t.Errorf("Method, Kind = %q, %q; want ModelInfer, %q", e.Method, e.Kind, tc.kind)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	md, err := client.Metadata(testContext(t), "dummy", "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(md.GetVersions(), []string{"1", "2"}) {
		t.Errorf("versions = %v; want [1 2]", md.GetVersions())
	}
	in, out := md.GetInputs(), md.GetOutputs()
	if len(in) != 1 || in[0].GetName() != "b" || in[0].GetDatatype() != "FP32" || !slices.Equal(in[0].GetShape(), []int64{1, 10}) {
		t.Errorf("inputs = %v; want b FP32 [1 10]", in)
	}
	if len(out) != 1 || out[0].GetName() != "a" {
		t.Errorf("outputs = %v; want a", out)
	}
}

func TestChatStream(t *testing.T) {
	const maxTokens = 8
	req := &generationv1.ChatRequest{
		Model:    "llm",
		Messages: []*generationv1.ChatMessage{{Role: "user", Content: "Say hello."}},
		// ignore_eos makes the model generate exactly max_tokens, so the
		// usage count is known even though the random-weight text is not.
		Sampling:     &generationv1.SamplingParams{MaxTokens: proto.Uint32(maxTokens), IgnoreEos: true},
		IncludeUsage: true,
	}
	var msgs []*generationv1.ChatResponse
	for resp, err := range client.Chat(testContext(t), req) {
		if err != nil {
			t.Fatalf("Chat after %d messages: %v", len(msgs), err)
		}
		msgs = append(msgs, resp)
	}
	// Expected: role, 1..maxTokens deltas (one may carry several tokens), usage.
	if len(msgs) < 3 {
		t.Fatalf("got %d messages; want role, deltas and usage", len(msgs))
	}
	first, deltas, last := msgs[0], msgs[1:len(msgs)-1], msgs[len(msgs)-1]
	if c := first.GetChoices(); len(c) != 1 || c[0].GetRole() != "assistant" {
		t.Errorf("first message choices = %v; want role assistant", c)
	}
	if len(deltas) > maxTokens {
		t.Errorf("%d deltas for %d tokens", len(deltas), maxTokens)
	}
	for i, m := range msgs {
		if m.GetId() != first.GetId() || m.GetModel() != "llm" {
			t.Errorf("message %d: id, model = %q, %q; want %q, llm", i, m.GetId(), m.GetModel(), first.GetId())
		}
		if m.GetUsage() != nil && m != last {
			t.Errorf("message %d carries usage before the end", i)
		}
	}
	final := deltas[len(deltas)-1].GetChoices()
	if len(final) != 1 || final[0].GetFinishReason() != generationv1.FinishReason_FINISH_REASON_LENGTH {
		t.Errorf("last delta choices = %v; want finish_reason LENGTH", final)
	}
	u := last.GetUsage()
	if u == nil || len(last.GetChoices()) != 0 {
		t.Fatalf("last message = %v; want usage only", last)
	}
	if u.GetPromptTokens() == 0 || u.GetCompletionTokens() != maxTokens ||
		u.GetTotalTokens() != u.GetPromptTokens()+u.GetCompletionTokens() {
		t.Errorf("usage = %v; want prompt_tokens > 0, completion_tokens = %d, total = their sum", u, maxTokens)
	}
}

func TestChatError(t *testing.T) {
	// An empty conversation is rejected; the iterator yields the error once.
	var errs []error
	for resp, err := range client.Chat(testContext(t), &generationv1.ChatRequest{Model: "llm"}) {
		if err == nil {
			t.Fatalf("unexpected message %v", resp)
		}
		errs = append(errs, err)
	}
	if len(errs) != 1 || status.Code(errs[0]) != codes.InvalidArgument {
		t.Fatalf("errors = %v; want one InvalidArgument", errs)
	}
}

func TestChatBreakEarly(t *testing.T) {
	req := &generationv1.ChatRequest{
		Model:    "llm",
		Messages: []*generationv1.ChatMessage{{Role: "user", Content: "Count."}},
		Sampling: &generationv1.SamplingParams{MaxTokens: proto.Uint32(64), IgnoreEos: true},
	}
	n := 0
	for _, err := range client.Chat(testContext(t), req) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 2 {
			break // cancels the call; the connection stays usable
		}
	}
	if serving, err := client.Health(testContext(t), ""); err != nil || !serving {
		t.Errorf("Health after an abandoned stream = %v, %v", serving, err)
	}
}

// The generated TensorFlow Serving stubs, used directly: Predict on dummy v1.
func TestTFSPredict(t *testing.T) {
	b := dummyInput()
	resp, err := client.TFS.Predict(testContext(t), &apis.PredictRequest{
		ModelSpec: &apis.ModelSpec{Name: "dummy", VersionChoice: &apis.ModelSpec_Version{Version: wrapperspb.Int64(1)}},
		Inputs: map[string]*framework.TensorProto{"b": {
			Dtype:       framework.DataType_DT_FLOAT,
			TensorShape: &framework.TensorShapeProto{Dim: []*framework.TensorShapeProto_Dim{{Size: 1}, {Size: 10}}},
			FloatVal:    b,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := resp.GetOutputs()["a"]
	got := a.GetFloatVal() // TFS sends either float_val or packed tensor_content
	if raw := a.GetTensorContent(); len(raw) > 0 {
		got = make([]float32, len(raw)/4)
		for i := range got {
			got[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	}
	if want := plus(b, 1); !slices.Equal(got, want) {
		t.Errorf("a = %v; want %v", got, want)
	}
}

// The quickstart example, built and run as a user would, against the same server.
func TestQuickstartExample(t *testing.T) {
	t.Parallel() // compiling it takes a few seconds; overlap that with the other tests
	cmd := exec.CommandContext(testContext(t), "go", "run", "./examples/quickstart", "-addr", addr)
	cmd.Dir = ".." // the module root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run ./examples/quickstart: %v\n%s", err, out)
	}
	for _, want := range []string{
		"health: SERVING\n",
		"dummy v1: a = [1 2 3 4 5 6 7 8 9 10]\n",
		"dummy v2: a = [2 3 4 5 6 7 8 9 10 11]\n",
		"completion_tokens=8",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Decoding needs no server, but the checks against datatype and shape are
// what keep a wrong accessor from silently reinterpreting bytes.
func TestTensorRoundTrip(t *testing.T) {
	asOutput := func(in ovms.Tensor) ovms.Output {
		return ovms.Output{Name: in.Name, Datatype: in.Datatype, Shape: in.Shape, Raw: in.Raw}
	}
	i64 := []int64{-1, 0, 1 << 40}
	if got, err := asOutput(ovms.NewTensor("x", []int64{3}, i64)).AsInt64(); err != nil || !slices.Equal(got, i64) {
		t.Errorf("INT64 round trip = %v, %v", got, err)
	}
	i32 := []int32{-7, 0, 7, 1 << 30}
	o := asOutput(ovms.NewTensor("x", []int64{2, 2}, i32))
	if got, err := o.AsInt32(); err != nil || !slices.Equal(got, i32) {
		t.Errorf("INT32 round trip = %v, %v", got, err)
	}
	if o.Datatype != "INT32" || len(o.Raw) != 16 {
		t.Errorf("INT32 tensor = %s with %d bytes", o.Datatype, len(o.Raw))
	}
	if _, err := o.AsFloat32(); err == nil {
		t.Error("AsFloat32 of an INT32 output succeeded")
	}
	o.Shape = []int64{5}
	if _, err := o.AsInt32(); err == nil {
		t.Error("AsInt32 with 4 values for shape [5] succeeded")
	}
}
