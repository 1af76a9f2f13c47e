package main

import "syscall"

// childAttr also asks the kernel to end the child if tpdev itself dies without cleaning up.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
