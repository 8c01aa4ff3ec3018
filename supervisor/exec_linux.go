package supervisor

import "syscall"

// sysProcAttr puts the child in its own process group and has the kernel
// SIGKILL it when the supervisor's forking thread (kept alive until the
// child is reaped) dies, so an orphan never keeps the storage lock.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
