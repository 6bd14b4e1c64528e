// Package proc runs the helper servers of the test harnesses (versitygw, the
// Lambda Runtime Interface Emulator) as subprocesses: each in a process group
// of its own, so that stopping it also stops what it started, and, on Linux,
// killed by the kernel if the test binary dies first. Only test harnesses
// import it.
//
//	ports, _ := proc.FreePorts(1)
//	logs := proc.NewTailBuffer(64 << 10)
//	cmd := exec.Command(bin, "--port", addr)
//	cmd.Stdout, cmd.Stderr = logs, logs
//	p, err := proc.Start(cmd)
//	if err := p.WaitReady(ctx, 10*time.Second, proc.HTTPOK(url)); err != nil { … logs.String() … }
//	defer p.Stop(5*time.Second, 10*time.Second) // SIGTERM, then SIGKILL to the group
package proc
