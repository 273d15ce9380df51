// Command natsprof is nats-server that profiles its CPU the way pulpdist's
// programs do (PULPDIST_CPU_PROFILE, between two SIGUSR1): the benchmark
// harness runs it instead of nats-server when BENCH_PROFILE names a
// directory. Arguments are nats-server's.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "natsprof:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("nats-server", flag.ExitOnError)
	opts, err := server.ConfigureOptions(fs, os.Args[1:], func() {}, fs.Usage, func() {})
	if err != nil {
		return err
	}
	opts.NoSigs = true
	f, err := os.Create(os.Getenv("PULPDIST_CPU_PROFILE"))
	if err != nil {
		return err
	}
	defer f.Close()
	s, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	s.ConfigureLogger()
	go s.Start()
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGUSR1)
	profiling, written := false, false
	for v := range sig {
		if v == syscall.SIGUSR1 && !written {
			if profiling {
				pprof.StopCPUProfile()
				profiling, written = false, true
			} else if err := pprof.StartCPUProfile(f); err == nil {
				profiling = true
			}
			continue
		}
		if v != syscall.SIGUSR1 {
			break
		}
	}
	s.Shutdown()
	s.WaitForShutdown()
	if profiling {
		pprof.StopCPUProfile()
	}
	return nil
}
