package io.ovmsgrpc.client;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * Gives tests a live server: {@code OVMS_GRPC_ADDR} (system property or environment) when set,
 * otherwise one {@code ovms-grpc --demo} subprocess on a free loopback port, started once for
 * the whole run and stopped, with its children, when the run ends.
 *
 * <p>Test methods take an {@link OvmsClient} (one per test class) or a {@link Address}.
 */
public final class LiveServer implements BeforeAllCallback, ParameterResolver {

  /** The server's host:port. */
  public record Address(String target) {}

  private static final Duration STARTUP = Duration.ofSeconds(180);
  private static final Path LOG = Path.of("target", "ovms-grpc-server.log");

  @Override
  public void beforeAll(ExtensionContext context) {
    server(context);
  }

  @Override
  public boolean supportsParameter(ParameterContext p, ExtensionContext c) {
    Class<?> type = p.getParameter().getType();
    return type == OvmsClient.class || type == Address.class;
  }

  @Override
  public Object resolveParameter(ParameterContext p, ExtensionContext c) {
    String target = server(c).target;
    if (p.getParameter().getType() == Address.class) {
      return new Address(target);
    }
    // In the test class's store: JUnit closes it (AutoCloseable) when the class is done.
    return c.getStore(ExtensionContext.Namespace.create(LiveServer.class, c.getRequiredTestClass()))
        .getOrComputeIfAbsent("client", k -> new Client(new OvmsClient(target)), Client.class)
        .client;
  }

  private record Client(OvmsClient client) implements AutoCloseable {
    @Override
    public void close() {
      client.close();
    }
  }

  // The root store lives for the whole run, so every test class shares one server.
  private static Server server(ExtensionContext context) {
    return context.getRoot()
        .getStore(ExtensionContext.Namespace.create(LiveServer.class))
        .getOrComputeIfAbsent("server", k -> Server.start(), Server.class);
  }

  private static final class Server implements AutoCloseable {
    final String target;
    final Process process; // null for a server given by OVMS_GRPC_ADDR
    final Thread shutdownHook;

    private Server(String target, Process process) {
      this.target = target;
      this.process = process;
      // Also stop the server if the JVM ends without JUnit closing the store (e.g. Ctrl-C).
      this.shutdownHook = process == null ? null : new Thread(this::stop, "ovms-grpc-stop");
      if (shutdownHook != null) {
        Runtime.getRuntime().addShutdownHook(shutdownHook);
      }
    }

    static Server start() {
      String given = System.getProperty("OVMS_GRPC_ADDR", System.getenv("OVMS_GRPC_ADDR"));
      if (given != null && !given.isBlank()) {
        Server server = new Server(given.trim(), null);
        server.awaitServing();
        return server;
      }
      int port = freeLoopbackPort();
      Process process;
      try {
        Files.createDirectories(LOG.getParent());
        process =
            new ProcessBuilder(
                    "ovms-grpc", "--demo", "--port", Integer.toString(port),
                    "--grpc_bind_address", "127.0.0.1")
                .redirectErrorStream(true)
                // To a file, not a pipe: nobody reads a pipe and a full one would block the server.
                .redirectOutput(LOG.toFile())
                .start();
      } catch (IOException e) {
        throw new IllegalStateException("cannot start ovms-grpc (is it installed and on PATH?)", e);
      }
      Server server = new Server("127.0.0.1:" + port, process);
      try {
        server.awaitServing();
      } catch (RuntimeException e) {
        server.close();
        throw e;
      }
      return server;
    }

    /** Polls grpc.health.v1 until the whole server ("") is SERVING, i.e. every model loaded. */
    void awaitServing() {
      Instant deadline = Instant.now().plus(STARTUP);
      try (OvmsClient client = new OvmsClient(target, Duration.ofSeconds(2))) {
        String last = "no answer";
        while (Instant.now().isBefore(deadline)) {
          if (process != null && !process.isAlive()) {
            throw new IllegalStateException(
                "ovms-grpc exited with " + process.exitValue() + " before serving:\n" + logTail());
          }
          try {
            if (client.isServing("")) {
              return;
            }
            last = "NOT_SERVING";
          } catch (StatusRuntimeException e) {
            // UNAVAILABLE until the port listens; any other code is a real answer worth showing.
            last = e.getStatus().toString();
            if (e.getStatus().getCode() != Status.Code.UNAVAILABLE
                && e.getStatus().getCode() != Status.Code.DEADLINE_EXCEEDED) {
              throw new IllegalStateException("health check of " + target + " failed: " + last, e);
            }
          }
          pause(200); // poll interval, not a readiness guess: the loop exits on SERVING
        }
        throw new IllegalStateException(
            target + " not SERVING within " + STARTUP.toSeconds() + " s (last: " + last + ")\n" + logTail());
      }
    }

    @Override
    public void close() {
      stop();
      if (shutdownHook != null && Thread.currentThread() != shutdownHook) {
        try {
          Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException alreadyShuttingDown) {
          // the hook runs or ran: nothing left to undo
        }
      }
    }

    /**
     * SIGTERM first, so the server stops its model engines itself; then whatever is left of
     * the tree, collected before the parent dies (its orphans would be reparented and lost).
     */
    private synchronized void stop() {
      if (process == null || !process.isAlive()) {
        return;
      }
      List<ProcessHandle> tree = process.descendants().toList();
      process.destroy();
      tree.forEach(ProcessHandle::destroy);
      try {
        if (!process.waitFor(15, TimeUnit.SECONDS)) {
          process.destroyForcibly();
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
      }
      for (ProcessHandle p : tree) {
        try {
          p.onExit().get(5, TimeUnit.SECONDS);
        } catch (Exception stillAlive) {
          p.destroyForcibly();
        }
      }
    }
  }

  private static int freeLoopbackPort() {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    } catch (IOException e) {
      throw new IllegalStateException("no free loopback port", e);
    }
  }

  private static String logTail() {
    try {
      List<String> lines = Files.readAllLines(LOG);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
    } catch (IOException e) {
      return "(no server log at " + LOG + ")";
    }
  }

  private static void pause(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for the server", e);
    }
  }
}
