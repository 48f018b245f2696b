package io.ovmsgrpc.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.ByteString;
import io.ovmsgrpc.inference.InferTensorContents;
import io.ovmsgrpc.inference.ModelInferResponse;
import io.ovmsgrpc.inference.ModelInferResponse.InferOutputTensor;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Decoding without a server: the demo models only answer FP32, so INT64/INT32 and the
 * little-endian byte order are pinned here on hand-built responses.
 */
class TensorTest {

  private static InferOutputTensor out(String name, String datatype, long... shape) {
    return InferOutputTensor.newBuilder()
        .setName(name)
        .setDatatype(datatype)
        .addAllShape(java.util.Arrays.stream(shape).boxed().toList())
        .build();
  }

  @Test
  void decodesLittleEndianRawOutputs() {
    ModelInferResponse response =
        ModelInferResponse.newBuilder()
            .addOutputs(out("f", "FP32", 2))
            .addOutputs(out("l", "INT64", 1))
            .addOutputs(out("i", "INT32", 2))
            // 1.0f = 0x3F800000 and -2.5f = 0xC0200000, least significant byte first.
            .addRawOutputContents(bytes(0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0))
            .addRawOutputContents(bytes(0x02, 0x01, 0, 0, 0, 0, 0, 0x80)) // Long.MIN_VALUE + 0x102
            .addRawOutputContents(bytes(0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0, 0, 0))
            .build();
    Map<String, Tensor> t = OvmsClient.outputs(response);
    assertEquals(List.of("f", "l", "i"), List.copyOf(t.keySet()));
    assertArrayEquals(new float[] {1.0f, -2.5f}, t.get("f").floats(), 0f);
    assertArrayEquals(new long[] {Long.MIN_VALUE + 0x102}, t.get("l").longs());
    assertArrayEquals(new int[] {-1, 7}, t.get("i").ints());
    assertArrayEquals(new long[] {2}, t.get("i").shape());
  }

  @Test
  void decodesTypedContentsWhenNoRawBytesCame() {
    ModelInferResponse response =
        ModelInferResponse.newBuilder()
            .addOutputs(
                out("l", "INT64", 3).toBuilder()
                    .setContents(InferTensorContents.newBuilder().addAllInt64Contents(List.of(5L, -6L, 7L))))
            .build();
    assertArrayEquals(new long[] {5, -6, 7}, OvmsClient.outputs(response).get("l").longs());
  }

  @Test
  void encodesInputsLittleEndian() {
    assertEquals(bytes(0x00, 0x00, 0x80, 0x3F), Tensor.fp32("x", new long[] {1}, 1.0f).rawBytes());
    assertEquals(bytes(0x07, 0, 0, 0, 0, 0, 0, 0), Tensor.int64("x", new long[] {1}, 7L).rawBytes());
    assertEquals(bytes(0xFE, 0xFF, 0xFF, 0xFF), Tensor.int32("x", new long[] {1}, -2).rawBytes());
  }

  @Test
  void wrongTypedAccessorSaysWhatTheTensorIs() {
    Tensor t = Tensor.int32("i", new long[] {1}, 1);
    IllegalStateException e = assertThrows(IllegalStateException.class, t::floats);
    assertEquals("tensor i is INT32, not float[]", e.getMessage());
  }

  private static ByteString bytes(int... b) {
    byte[] out = new byte[b.length];
    for (int i = 0; i < b.length; i++) {
      out[i] = (byte) b[i];
    }
    return ByteString.copyFrom(out);
  }
}
