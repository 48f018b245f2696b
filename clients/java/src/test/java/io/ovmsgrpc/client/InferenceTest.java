package io.ovmsgrpc.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.ovmsgrpc.inference.ModelMetadataResponse;
import io.ovmsgrpc.inference.ModelMetadataResponse.TensorMetadata;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** KServe v2 inference and metadata against the demo's {@code dummy} (a = b + version). */
@ExtendWith(LiveServer.class)
class InferenceTest {

  private static final long[] SHAPE = {1, 10};
  private static final float[] INPUT = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};

  private static float[] plus(float k) {
    float[] out = new float[INPUT.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = INPUT[i] + k;
    }
    return out;
  }

  @Test
  void versionOneAddsOne(OvmsClient client) {
    Map<String, Tensor> out = client.inferFloat32("dummy", 1, "b", SHAPE, INPUT);
    assertEquals(List.of("a"), List.copyOf(out.keySet()));
    Tensor a = out.get("a");
    assertEquals("FP32", a.datatype());
    assertArrayEquals(SHAPE, a.shape());
    // Small integers are exact in FP32: no tolerance.
    assertArrayEquals(plus(1), a.floats(), 0f);
  }

  @Test
  void versionTwoAddsTwo(OvmsClient client) {
    assertArrayEquals(plus(2), client.inferFloat32("dummy", 2, "b", SHAPE, INPUT).get("a").floats(), 0f);
  }

  @Test
  void defaultVersionIsTheHighest(OvmsClient client) {
    assertArrayEquals(plus(2), client.inferFloat32("dummy", 0, "b", SHAPE, INPUT).get("a").floats(), 0f);
  }

  @Test
  void metadataDescribesDummy(OvmsClient client) {
    ModelMetadataResponse meta = client.metadata("dummy");
    assertEquals("dummy", meta.getName());
    assertTrue(meta.getVersionsList().containsAll(List.of("1", "2")), meta.getVersionsList().toString());
    TensorMetadata b = meta.getInputs(0);
    assertEquals("b", b.getName());
    assertEquals("FP32", b.getDatatype());
    assertEquals(List.of(1L, 10L), b.getShapeList());
    assertEquals("a", meta.getOutputs(0).getName());
  }

  @Test
  void unknownModelIsNotFound(OvmsClient client) {
    StatusRuntimeException e =
        assertThrows(StatusRuntimeException.class, () -> client.inferFloat32("no_such_model", 0, "b", SHAPE, INPUT));
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().startsWith("Model with requested name is not found"), e.getMessage());
  }

  @Test
  void unknownVersionIsNotFound(OvmsClient client) {
    StatusRuntimeException e =
        assertThrows(StatusRuntimeException.class, () -> client.inferFloat32("dummy", 3, "b", SHAPE, INPUT));
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().startsWith("Model with requested version is not found"), e.getMessage());
  }

  @Test
  void metadataOfUnknownModelIsNotFound(OvmsClient client) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> client.metadata("no_such_model"));
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
  }

  @Test
  void wrongShapeIsInvalidArgument(OvmsClient client) {
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () -> client.inferFloat32("dummy", 1, "b", new long[] {1, 5}, new float[] {0, 1, 2, 3, 4}));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().startsWith("Invalid input shape"), e.getMessage());
  }
}
