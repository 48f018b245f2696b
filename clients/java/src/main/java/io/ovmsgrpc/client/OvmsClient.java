package io.ovmsgrpc.client;

import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.ovmsgrpc.generation.v1.ChatMessage;
import io.ovmsgrpc.generation.v1.ChatRequest;
import io.ovmsgrpc.generation.v1.ChatResponse;
import io.ovmsgrpc.generation.v1.GenerationServiceGrpc;
import io.ovmsgrpc.generation.v1.SamplingParams;
import io.ovmsgrpc.inference.GRPCInferenceServiceGrpc;
import io.ovmsgrpc.inference.ModelInferRequest;
import io.ovmsgrpc.inference.ModelInferResponse;
import io.ovmsgrpc.inference.ModelMetadataRequest;
import io.ovmsgrpc.inference.ModelMetadataResponse;
import java.time.Duration;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * A small blocking client for ovms-grpc and OpenVINO Model Server: KServe v2 inference and
 * metadata, gRPC health, and streamed chat.
 *
 * <p>Server errors are not wrapped: every call throws the {@link StatusRuntimeException} it got,
 * so callers switch on {@code e.getStatus().getCode()} exactly as OVMS documents its codes
 * (NOT_FOUND for an unknown model or version, INVALID_ARGUMENT for a wrong shape, ...).
 *
 * <p>Thread-safe: one client (one HTTP/2 connection) is meant to be shared.
 */
public final class OvmsClient implements AutoCloseable {

  /** Enough for the first request to an LLM on a small CPU. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(120);

  // gRPC's 4 MiB default is smaller than many image batches or their outputs.
  private static final int MAX_MESSAGE_BYTES = 256 << 20;

  private final ManagedChannel channel;
  private final Duration timeout;
  private final GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub inference;
  private final GenerationServiceGrpc.GenerationServiceBlockingStub generation;
  private final HealthGrpc.HealthBlockingStub health;

  /** Connects in plaintext to {@code target}, e.g. {@code "localhost:9000"}. */
  public OvmsClient(String target) {
    this(target, DEFAULT_TIMEOUT);
  }

  /** {@code timeout} bounds every call; for a chat, the whole stream. */
  public OvmsClient(String target, Duration timeout) {
    this.channel =
        Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
            .maxInboundMessageSize(MAX_MESSAGE_BYTES)
            .build();
    this.timeout = timeout;
    this.inference = GRPCInferenceServiceGrpc.newBlockingStub(channel);
    this.generation = GenerationServiceGrpc.newBlockingStub(channel);
    this.health = HealthGrpc.newBlockingStub(channel);
  }

  // A stub's withDeadlineAfter fixes an absolute deadline when it is called, so each call
  // takes a fresh one instead of the stubs holding one.
  private <S extends io.grpc.stub.AbstractStub<S>> S withDeadline(S stub) {
    return stub.withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  /**
   * Runs {@code model} on one FP32 input and returns its outputs by name.
   *
   * @param version a version number, or 0 for the server's default (the highest served)
   */
  public Map<String, Tensor> inferFloat32(
      String model, long version, String inputName, long[] shape, float[] data) {
    return infer(model, version, List.of(Tensor.fp32(inputName, shape, data)));
  }

  /** Runs {@code model} on any FP32/INT64/INT32 inputs and returns its outputs by name. */
  public Map<String, Tensor> infer(String model, long version, List<Tensor> inputs) {
    ModelInferRequest.Builder request =
        ModelInferRequest.newBuilder()
            .setModelName(model)
            .setModelVersion(version > 0 ? Long.toString(version) : "");
    for (Tensor input : inputs) {
      request.addInputs(input.toInput()).addRawInputContents(input.rawBytes());
    }
    return outputs(withDeadline(inference).modelInfer(request.build()));
  }

  /** Decodes a ModelInfer response; public so the decoding can be used (and tested) alone. */
  public static Map<String, Tensor> outputs(ModelInferResponse response) {
    Map<String, Tensor> outputs = new LinkedHashMap<>();
    boolean raw = response.getRawOutputContentsCount() > 0;
    for (int i = 0; i < response.getOutputsCount(); i++) {
      var out = response.getOutputs(i);
      outputs.put(out.getName(), Tensor.fromOutput(out, raw ? response.getRawOutputContents(i) : null));
    }
    return outputs;
  }

  /** The model's KServe metadata (versions, inputs, outputs) for its default version. */
  public ModelMetadataResponse metadata(String model) {
    return withDeadline(inference).modelMetadata(ModelMetadataRequest.newBuilder().setName(model).build());
  }

  /**
   * Whether {@code service} reports SERVING over grpc.health.v1 ("" is the whole server).
   * An unknown service is NOT_FOUND, thrown like every other error.
   */
  public boolean isServing(String service) {
    return health(service) == ServingStatus.SERVING;
  }

  public ServingStatus health(String service) {
    return withDeadline(health).check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus();
  }

  /** One user message to {@code model}, at most {@code maxTokens} tokens, with usage at the end. */
  public Stream<ChatResponse> chat(String model, String userMessage, int maxTokens) {
    return chat(
        ChatRequest.newBuilder()
            .setModel(model)
            .addMessages(ChatMessage.newBuilder().setRole("user").setContent(userMessage))
            .setSampling(SamplingParams.newBuilder().setMaxTokens(maxTokens))
            .setIncludeUsage(true)
            .build());
  }

  /**
   * Streams a chat as the server sends it: a message with the role, then text deltas, the
   * finish reason on the last delta of each choice, then usage if {@code include_usage} is set.
   *
   * <p>The stream is lazy and blocking. Close it (try-with-resources) to cancel a generation that
   * was not read to the end; otherwise the server keeps generating until the deadline.
   */
  public Stream<ChatResponse> chat(ChatRequest request) {
    // A blocking server-stream call is cancelled through the Context it was started in.
    Context.CancellableContext call = Context.current().withCancellation();
    Iterator<ChatResponse> responses;
    Context previous = call.attach();
    try {
      responses = withDeadline(generation).chat(request);
    } finally {
      call.detach(previous);
    }
    return StreamSupport.stream(
            Spliterators.spliteratorUnknownSize(responses, Spliterator.ORDERED | Spliterator.NONNULL), false)
        .onClose(() -> call.cancel(null));
  }

  @Override
  public void close() {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }
}
