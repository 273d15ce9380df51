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
	"syscall"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pulpdist/pulpdist/libs/program"
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
	done, err := program.CPUProfile(os.Getenv(program.CPUProfileEnv))
	if err != nil {
		return err
	}
	defer done()
	s, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	s.ConfigureLogger()
	go s.Start()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}
