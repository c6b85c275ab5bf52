// Command netcore-bench measures netcore-connect against two references on
// this machine: the bare parse ceiling (a plain Go server that only decodes
// Netcore posts) and stock Benthos (http_server → parse → http_client). See
// bench/README.md for the method.
//
// It is Linux only: it reads the children's memory and CPU from /proc.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `netcore-bench: throughput of netcore-connect against the bare parse ceiling and stock Benthos.

Usage:
  netcore-bench run [flags]            run the benchmark (from the repository root)
  netcore-bench goals [flags]          burst, drain, steady and a big post of ours against bare, direct and stock, with the ratios to those ceilings
  netcore-bench pool [-out F] J...     the goals judged over the runs of several goals -json files at once
  netcore-bench render [-out F] J      the report of a goals -json file written again, by this version
  netcore-bench outage [flags]         memory and backlog of ours while Meiro Events is down, then the catch-up
  netcore-bench bare-server -addr A    the parse ceiling: decode posts, count events, answer 200
  netcore-bench sink -addr A           a stand-in for Meiro Events: answer 200, count events

The flags of run:
`

func main() {
	flag.CommandLine.Usage = func() {
		fmt.Fprint(os.Stderr, usage)
		runFlags := newRunFlagSet(&runFlags{})
		runFlags.SetOutput(os.Stderr)
		runFlags.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.CommandLine.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch cmd, args := flag.Arg(0), flag.Args()[1:]; cmd {
	case "run":
		err = runCommand(ctx, args)
	case "pool":
		err = poolCommand(args)
	case "render":
		err = renderCommand(args)
	case "outage":
		err = outageCommand(ctx, args)
	case "goals":
		err = goalsCommand(ctx, args)
	case "bare-server":
		err = bareServerCommand(ctx, args)
	case "sink":
		err = sinkCommand(ctx, args)
	default:
		fmt.Fprintf(os.Stderr, "netcore-bench: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "netcore-bench %s: %v\n", flag.Arg(0), err)
		stop()
		os.Exit(1)
	}
}
