//go:build !linux

package supervisor

import "syscall"

// sysProcAttr puts the child in its own process group; without a
// parent-death signal the lifeline pipe alone makes an orphan exit.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
