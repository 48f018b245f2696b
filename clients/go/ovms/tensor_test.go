package ovms

import (
	"slices"
	"testing"

	"github.com/ovms-grpc/ovms-grpc/clients/go/gen/inference"
)

// OVMS answers in raw_output_contents, but KServe also allows typed contents;
// no demo model makes the server use them, so the response is built here.
func TestOutputsTypedContents(t *testing.T) {
	resp := &inference.ModelInferResponse{Outputs: []*inference.ModelInferResponse_InferOutputTensor{
		{Name: "f", Datatype: "FP32", Shape: []int64{2}, Contents: &inference.InferTensorContents{Fp32Contents: []float32{1.5, -2}}},
		{Name: "i", Datatype: "INT64", Shape: []int64{1, 3}, Contents: &inference.InferTensorContents{Int64Contents: []int64{4, 5, 6}}},
	}}
	out := outputs(resp)
	if got, err := out["f"].AsFloat32(); err != nil || !slices.Equal(got, []float32{1.5, -2}) {
		t.Errorf("f = %v, %v", got, err)
	}
	if got, err := out["i"].AsInt64(); err != nil || !slices.Equal(got, []int64{4, 5, 6}) {
		t.Errorf("i = %v, %v", got, err)
	}
	if _, err := out["i"].AsInt32(); err == nil {
		t.Error("AsInt32 of an INT64 output succeeded")
	}
}
