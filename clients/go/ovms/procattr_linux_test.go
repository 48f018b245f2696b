package ovms_test

import "syscall"

func init() {
	// SIGTERM rather than SIGKILL: the server then shuts down its own
	// children (the generation engine) as it does on a normal stop.
	setPdeathsig = func(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGTERM }
}
