package io.ovmsgrpc.client.examples;

import io.ovmsgrpc.client.OvmsClient;
import io.ovmsgrpc.client.Tensor;
import io.ovmsgrpc.generation.v1.ChatResponse;
import java.util.Arrays;
import java.util.stream.Stream;

/**
 * Calls the demo server ({@code ovms-grpc --demo --port 9000}): health, {@code dummy} by
 * version, and a short streamed chat with {@code llm}.
 *
 * <pre>mvn -q compile exec:java -Dexec.args="localhost:9000"</pre>
 */
public final class Quickstart {

  public static void main(String[] args) {
    String address = args.length > 0 ? args[0] : "localhost:9000";
    try (OvmsClient client = new OvmsClient(address)) {
      System.out.println("health: " + client.health(""));

      float[] data = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
      for (long version : new long[] {1, 2}) {
        Tensor a = client.inferFloat32("dummy", version, "b", new long[] {1, 10}, data).get("a");
        System.out.println("dummy v" + version + ": " + Arrays.toString(a.floats()));
      }

      // The demo LLM has random weights: the text is nonsense, the streaming is real.
      System.out.print("llm: ");
      try (Stream<ChatResponse> chunks = client.chat("llm", "Hello!", 8)) {
        chunks.forEach(
            chunk -> {
              chunk.getChoicesList().forEach(choice -> System.out.print(choice.getContent()));
              if (chunk.hasUsage()) {
                System.out.printf(
                    "%nusage: prompt_tokens=%d completion_tokens=%d%n",
                    chunk.getUsage().getPromptTokens(), chunk.getUsage().getCompletionTokens());
              }
            });
      }
    }
  }

  private Quickstart() {}
}
