package ovms_test

// The tests run against a live server: the one at $OVMS_GRPC_ADDR when set,
// otherwise `ovms-grpc --demo` started here on a free loopback port and
// stopped at the end. Nothing is mocked, so a pass means this client and the
// server agree on the wire.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/ovms-grpc/ovms-grpc/clients/go/ovms"
)

// readyTimeout bounds the wait for SERVING: a cold start builds the demo
// repository and compiles every model, which takes a while on 2 cores.
const readyTimeout = 180 * time.Second

var (
	addr   string       // the server under test
	client *ovms.Client // shared by the tests; a Client is safe for concurrent use
)

// setPdeathsig is replaced on Linux (procattr_linux_test.go) so the server
// dies with the test binary even when `go test -timeout` kills it before any
// cleanup runs.
var setPdeathsig = func(*syscall.SysProcAttr) {}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) (code int) {
	addr = os.Getenv("OVMS_GRPC_ADDR")
	var exited <-chan struct{} // closed when a server started here exits
	if addr == "" {
		server, err := startServer()
		if err != nil {
			fmt.Fprintln(os.Stderr, "ovms tests:", err)
			return 1
		}
		defer func() { server.stop(code != 0) }()
		addr, exited = server.addr, server.exited
	}

	// Reconnect quickly while the server is still coming up; grpc's default
	// backoff (1s growing to 120s) would add seconds to every start.
	var err error
	client, err = ovms.Dial(addr, grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
		MinConnectTimeout: 5 * time.Second,
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ovms tests:", err)
		return 1
	}
	defer client.Close()

	start := time.Now()
	if err := waitServing(client, exited); err != nil {
		fmt.Fprintf(os.Stderr, "ovms tests: server at %s: %v\n", addr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "ovms tests: server at %s SERVING after %.1fs\n", addr, time.Since(start).Seconds())
	return m.Run()
}

// waitServing polls health until the whole server reports SERVING (it says
// NOT_SERVING while models load), the deadline passes, or the server exits.
func waitServing(c *ovms.Client, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		// Fails fast with Unavailable until the port accepts connections.
		serving, err := c.Health(ctx, "")
		if serving {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not SERVING within %v (last error: %v)", readyTimeout, last)
		case <-exited:
			return errors.New("server exited before it was SERVING")
		case <-tick.C:
		}
	}
}

type server struct {
	addr   string
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
}

func startServer() (*server, error) {
	bin, err := exec.LookPath("ovms-grpc")
	if err != nil {
		return nil, fmt.Errorf("set OVMS_GRPC_ADDR or put ovms-grpc on PATH (pip install -e . in the repository root): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	log, err := os.CreateTemp("", "ovms-grpc-test-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--demo", "--port", strconv.Itoa(port), "--grpc_bind_address", "127.0.0.1")
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so stop() also reaches the generation engine
	// and any other child the server starts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setPdeathsig(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	s := &server{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, log: log, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	fmt.Fprintf(os.Stderr, "ovms tests: started %s (pid %d, log %s)\n", cmd, cmd.Process.Pid, log.Name())
	return s, nil
}

// freePort asks the kernel for an unused loopback port. Another process could
// take it before the server binds it; the server then exits and the wait
// reports that, rather than hang.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stop asks the process group to shut down, then kills whatever is left.
// After a failure it prints the end of the server's log and keeps the file:
// it is the first thing to read.
func (s *server) stop(failed bool) {
	pgid := -s.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		failed = true
		fmt.Fprintln(os.Stderr, "ovms tests: server ignored SIGTERM for 15s; killing it")
	}
	_ = syscall.Kill(pgid, syscall.SIGKILL) // stragglers in the group, if any
	<-s.exited
	s.log.Close()
	if failed {
		s.printLog()
	} else {
		os.Remove(s.log.Name())
	}
}

func (s *server) printLog() {
	f, err := os.Open(s.log.Name())
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if lines = append(lines, sc.Text()); len(lines) > 60 {
			lines = lines[1:]
		}
	}
	fmt.Fprintf(os.Stderr, "ovms tests: last lines of the server log (%s):\n", s.log.Name())
	for _, line := range lines {
		fmt.Fprintln(os.Stderr, "  | "+line)
	}
}
