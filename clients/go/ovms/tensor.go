package ovms

import (
	"encoding/binary"
	"fmt"

	"github.com/ovms-grpc/ovms-grpc/clients/go/gen/inference"
)

// Element is a Go type with a fixed-size KServe datatype.
type Element interface {
	float32 | float64 | int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64
}

// Datatype is the KServe datatype name of T, e.g. "FP32" for float32.
func Datatype[T Element]() string {
	var zero T
	switch any(zero).(type) {
	case float32:
		return "FP32"
	case float64:
		return "FP64"
	case int8:
		return "INT8"
	case int16:
		return "INT16"
	case int32:
		return "INT32"
	case int64:
		return "INT64"
	case uint8:
		return "UINT8"
	case uint16:
		return "UINT16"
	case uint32:
		return "UINT32"
	case uint64:
		return "UINT64"
	}
	panic("unreachable: Element lists only the types above")
}

// Tensor is one model input. Build it with NewTensor, or fill the fields
// directly for datatypes Element does not cover (FP16, BOOL, BYTES).
type Tensor struct {
	Name     string
	Datatype string  // KServe datatype, e.g. "FP32"
	Shape    []int64 // e.g. [1, 10]
	Raw      []byte  // the elements, row-major, little-endian
}

// NewTensor encodes data, in row-major order, as the input name of the given shape.
func NewTensor[T Element](name string, shape []int64, data []T) Tensor {
	return Tensor{
		Name:     name,
		Datatype: Datatype[T](),
		Shape:    shape,
		// Append cannot fail for a slice of fixed-size elements.
		Raw: must(binary.Append(nil, binary.LittleEndian, data)),
	}
}

// Output is one model output as the server returned it.
type Output struct {
	Name     string
	Datatype string
	Shape    []int64
	// Raw holds the elements as little-endian bytes. It is nil when the
	// server sent typed contents instead (KServe allows either form); Values
	// reads both.
	Raw      []byte
	contents *inference.InferTensorContents
}

// Values decodes o as a []T. It fails when T does not match o's datatype or
// the element count does not match o's shape, rather than reinterpret bytes.
func Values[T Element](o Output) ([]T, error) {
	if want := Datatype[T](); o.Datatype != want {
		return nil, fmt.Errorf("ovms: output %q is %s, not %s", o.Name, o.Datatype, want)
	}
	var values []T
	if o.Raw != nil || o.contents == nil {
		size := binary.Size(*new(T))
		if len(o.Raw)%size != 0 {
			return nil, fmt.Errorf("ovms: output %q has %d bytes, not a multiple of %d", o.Name, len(o.Raw), size)
		}
		values = make([]T, len(o.Raw)/size)
		if _, err := binary.Decode(o.Raw, binary.LittleEndian, values); err != nil {
			return nil, fmt.Errorf("ovms: output %q: %w", o.Name, err)
		}
	} else {
		values = typedContents[T](o.contents)
	}
	if n := elements(o.Shape); int64(len(values)) != n {
		return nil, fmt.Errorf("ovms: output %q has %d values for shape %v (%d)", o.Name, len(values), o.Shape, n)
	}
	return values, nil
}

// AsFloat32 decodes an FP32 output.
func (o Output) AsFloat32() ([]float32, error) { return Values[float32](o) }

// AsInt64 decodes an INT64 output.
func (o Output) AsInt64() ([]int64, error) { return Values[int64](o) }

// AsInt32 decodes an INT32 output.
func (o Output) AsInt32() ([]int32, error) { return Values[int32](o) }

// outputs pairs each output with its raw_output_contents entry: the server
// sends either one entry per output, in order, or none (typed contents).
func outputs(resp *inference.ModelInferResponse) map[string]Output {
	raw := resp.GetRawOutputContents()
	out := make(map[string]Output, len(resp.GetOutputs()))
	for i, t := range resp.GetOutputs() {
		o := Output{Name: t.GetName(), Datatype: t.GetDatatype(), Shape: t.GetShape(), contents: t.GetContents()}
		if i < len(raw) {
			o.Raw = raw[i]
			if o.Raw == nil {
				o.Raw = []byte{} // an empty tensor, still the raw form
			}
		}
		out[o.Name] = o
	}
	return out
}

// typedContents reads the InferTensorContents field that holds T. KServe packs
// 8- and 16-bit integers into the 32-bit fields; those come back empty here,
// and Values then reports the count mismatch.
func typedContents[T Element](c *inference.InferTensorContents) []T {
	var field any
	switch any(*new(T)).(type) {
	case float32:
		field = c.GetFp32Contents()
	case float64:
		field = c.GetFp64Contents()
	case int32:
		field = c.GetIntContents()
	case int64:
		field = c.GetInt64Contents()
	case uint32:
		field = c.GetUintContents()
	case uint64:
		field = c.GetUint64Contents()
	}
	values, _ := field.([]T)
	return values
}

func elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
