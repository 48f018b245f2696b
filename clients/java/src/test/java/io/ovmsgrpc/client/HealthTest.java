package io.ovmsgrpc.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** grpc.health.v1, as Kubernetes gRPC probes use it. */
@ExtendWith(LiveServer.class)
class HealthTest {

  @ParameterizedTest
  @ValueSource(strings = {"", "inference.GRPCInferenceService"})
  void serving(String service, OvmsClient client) {
    assertTrue(client.isServing(service), () -> "'" + service + "' is " + client.health(service));
  }

  @Test
  void unknownServiceIsNotFound(OvmsClient client) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> client.isServing("no.Such"));
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
  }
}
