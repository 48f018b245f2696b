package io.ovmsgrpc.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ovmsgrpc.client.examples.Quickstart;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The documented example, run through its real entry point. */
@ExtendWith(LiveServer.class)
class QuickstartTest {

  @Test
  void printsHealthDummyAndChat(LiveServer.Address address) {
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    PrintStream original = System.out;
    System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
    try {
      Quickstart.main(new String[] {address.target()});
    } finally {
      System.setOut(original);
    }
    String out = captured.toString(StandardCharsets.UTF_8);
    original.print(out);
    List<String> lines = out.lines().toList();
    assertEquals("health: SERVING", lines.get(0));
    assertEquals("dummy v1: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]", lines.get(1));
    assertEquals("dummy v2: [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]", lines.get(2));
    assertTrue(lines.get(3).startsWith("llm: "), lines.get(3));
    String usage = lines.get(lines.size() - 1);
    assertTrue(usage.matches("usage: prompt_tokens=[1-9]\\d* completion_tokens=[0-8]"), usage);
  }
}
