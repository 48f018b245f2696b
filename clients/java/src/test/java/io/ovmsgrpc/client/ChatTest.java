package io.ovmsgrpc.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.ovmsgrpc.generation.v1.ChatChoiceDelta;
import io.ovmsgrpc.generation.v1.ChatMessage;
import io.ovmsgrpc.generation.v1.ChatRequest;
import io.ovmsgrpc.generation.v1.ChatResponse;
import io.ovmsgrpc.generation.v1.FinishReason;
import io.ovmsgrpc.generation.v1.SamplingParams;
import io.ovmsgrpc.generation.v1.Usage;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The streamed chat of the demo's {@code llm}. Its weights are random, so the text is checked
 * for structure and token accounting only, never for content.
 */
@ExtendWith(LiveServer.class)
class ChatTest {

  private static final int MAX_TOKENS = 8;

  private static ChatRequest request(String model) {
    return ChatRequest.newBuilder()
        .setModel(model)
        .addMessages(ChatMessage.newBuilder().setRole("user").setContent("Hello!"))
        // ignore_eos makes the length exact: an early EOS of the random model cannot cut it short.
        .setSampling(SamplingParams.newBuilder().setMaxTokens(MAX_TOKENS).setIgnoreEos(true))
        .setIncludeUsage(true)
        .build();
  }

  @Test
  void streamsDeltasThenUsage(OvmsClient client) {
    List<ChatResponse> chunks;
    try (Stream<ChatResponse> stream = client.chat(request("llm"))) {
      chunks = stream.toList();
    }
    assertTrue(chunks.size() >= 3, "role, deltas and usage expected, got " + chunks.size() + " messages");
    String id = chunks.get(0).getId();
    assertFalse(id.isEmpty());
    chunks.forEach(c -> assertEquals(id, c.getId(), "one id for the whole stream"));

    List<ChatChoiceDelta> deltas = chunks.stream().flatMap(c -> c.getChoicesList().stream()).toList();
    assertEquals("assistant", deltas.get(0).getRole());
    // Exactly one delta, the last, ends the (only) choice; max_tokens with ignore_eos ends it by length.
    List<ChatChoiceDelta> finished =
        deltas.stream().filter(d -> d.getFinishReason() != FinishReason.FINISH_REASON_UNSPECIFIED).toList();
    assertEquals(1, finished.size());
    assertEquals(FinishReason.FINISH_REASON_LENGTH, finished.get(0).getFinishReason());
    assertEquals(deltas.get(deltas.size() - 1), finished.get(0));

    // Usage comes alone, last, and only there.
    ChatResponse last = chunks.get(chunks.size() - 1);
    assertTrue(last.hasUsage());
    assertEquals(0, last.getChoicesCount());
    chunks.subList(0, chunks.size() - 1).forEach(c -> assertFalse(c.hasUsage()));

    Usage usage = last.getUsage();
    long textDeltas = deltas.stream().filter(d -> !d.getContent().isEmpty()).count();
    assertTrue(usage.getPromptTokens() > 0, usage.toString());
    assertEquals(MAX_TOKENS, usage.getCompletionTokens(), usage.toString());
    assertEquals(usage.getPromptTokens() + usage.getCompletionTokens(), usage.getTotalTokens());
    // A delta carries one or more whole tokens (the detokenizer may hold back a partial
    // character), so there are at least one and at most completion_tokens text deltas.
    assertTrue(textDeltas >= 1 && textDeltas <= usage.getCompletionTokens(), textDeltas + " text deltas for " + usage);
  }

  @Test
  void closingTheStreamEarlyCancelsIt(OvmsClient client) {
    ChatRequest longer = request("llm").toBuilder().setSampling(SamplingParams.newBuilder().setMaxTokens(256).setIgnoreEos(true)).build();
    try (Stream<ChatResponse> stream = client.chat(longer)) {
      assertTrue(stream.findFirst().isPresent());
    }
    // The connection is still good for the next call after the cancel.
    assertTrue(client.isServing(""));
  }

  @Test
  void unknownModelIsNotFound(OvmsClient client) {
    // A server stream reports its error on the first read, not at the call.
    StatusRuntimeException e =
        assertThrows(StatusRuntimeException.class, () -> {
          try (Stream<ChatResponse> stream = client.chat(request("no_such_model"))) {
            stream.forEach(c -> {});
          }
        });
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().startsWith("Model with requested name is not found"), e.getMessage());
  }
}
