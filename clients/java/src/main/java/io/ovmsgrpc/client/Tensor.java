package io.ovmsgrpc.client;

import com.google.protobuf.ByteString;
import io.ovmsgrpc.inference.InferTensorContents;
import io.ovmsgrpc.inference.ModelInferRequest.InferInputTensor;
import io.ovmsgrpc.inference.ModelInferResponse.InferOutputTensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A named tensor with its KServe datatype, shape and values as a Java array: {@code float[]} for
 * FP32, {@code long[]} for INT64, {@code int[]} for INT32, and the raw little-endian bytes
 * ({@code byte[]}) for any other datatype.
 */
public record Tensor(String name, String datatype, long[] shape, Object values) {

  public static Tensor fp32(String name, long[] shape, float... values) {
    return new Tensor(name, "FP32", shape, values);
  }

  public static Tensor int64(String name, long[] shape, long... values) {
    return new Tensor(name, "INT64", shape, values);
  }

  public static Tensor int32(String name, long[] shape, int... values) {
    return new Tensor(name, "INT32", shape, values);
  }

  public float[] floats() {
    return as(float[].class);
  }

  public long[] longs() {
    return as(long[].class);
  }

  public int[] ints() {
    return as(int[].class);
  }

  private <T> T as(Class<T> type) {
    if (!type.isInstance(values)) {
      throw new IllegalStateException(
          "tensor " + name + " is " + datatype + ", not " + type.getComponentType() + "[]");
    }
    return type.cast(values);
  }

  /**
   * The request side. Sent as raw_input_contents rather than typed contents: it is what OVMS
   * reads without a copy, and one request must not mix the two forms.
   */
  InferInputTensor toInput() {
    return InferInputTensor.newBuilder()
        .setName(name)
        .setDatatype(datatype)
        .addAllShape(Arrays.stream(shape).boxed().toList())
        .build();
  }

  ByteString rawBytes() {
    ByteBuffer buf;
    if (values instanceof float[] f) {
      buf = little(f.length * Float.BYTES);
      buf.asFloatBuffer().put(f);
    } else if (values instanceof long[] l) {
      buf = little(l.length * Long.BYTES);
      buf.asLongBuffer().put(l);
    } else if (values instanceof int[] i) {
      buf = little(i.length * Integer.BYTES);
      buf.asIntBuffer().put(i);
    } else if (values instanceof byte[] b) {
      return ByteString.copyFrom(b);
    } else {
      throw new IllegalArgumentException("unsupported values: " + values.getClass());
    }
    return ByteString.copyFrom(buf);
  }

  /**
   * Decodes one output. OVMS (and ovms-grpc) always answer in raw_output_contents, as
   * little-endian bytes; typed contents are read too, for KServe servers that send them.
   */
  static Tensor fromOutput(InferOutputTensor out, ByteString raw) {
    long[] shape = out.getShapeList().stream().mapToLong(Long::longValue).toArray();
    String dt = out.getDatatype();
    Object values = raw != null ? decodeRaw(dt, raw) : decodeContents(dt, out.getContents());
    return new Tensor(out.getName(), dt, shape, values);
  }

  private static Object decodeRaw(String datatype, ByteString raw) {
    ByteBuffer buf = raw.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    switch (datatype) {
      case "FP32": {
        float[] v = new float[buf.remaining() / Float.BYTES];
        buf.asFloatBuffer().get(v);
        return v;
      }
      case "INT64": {
        long[] v = new long[buf.remaining() / Long.BYTES];
        buf.asLongBuffer().get(v);
        return v;
      }
      case "INT32": {
        int[] v = new int[buf.remaining() / Integer.BYTES];
        buf.asIntBuffer().get(v);
        return v;
      }
      default:
        return raw.toByteArray();
    }
  }

  private static Object decodeContents(String datatype, InferTensorContents c) {
    switch (datatype) {
      case "FP32": {
        float[] v = new float[c.getFp32ContentsCount()];
        for (int i = 0; i < v.length; i++) {
          v[i] = c.getFp32Contents(i);
        }
        return v;
      }
      case "INT64":
        return c.getInt64ContentsList().stream().mapToLong(Long::longValue).toArray();
      case "INT32":
        return c.getIntContentsList().stream().mapToInt(Integer::intValue).toArray();
      default:
        throw new IllegalStateException("no raw bytes for a " + datatype + " output");
    }
  }

  private static ByteBuffer little(int bytes) {
    return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
  }

  @Override
  public String toString() {
    String v;
    if (values instanceof float[] f) {
      v = Arrays.toString(f);
    } else if (values instanceof long[] l) {
      v = Arrays.toString(l);
    } else if (values instanceof int[] i) {
      v = Arrays.toString(i);
    } else {
      v = ((byte[]) values).length + " bytes";
    }
    return name + " " + datatype + Arrays.toString(shape) + " " + v;
  }
}
