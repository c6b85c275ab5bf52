package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// poolCommand judges the goals over the repetitions of several goals runs
// at once (their -json files): on these shared cores one repetition's ratio
// moves by up to half, so a median of three cannot tell a goal met from one
// missed near its threshold, and a median of nine or fifteen can. Pool only
// runs of one binary, or say what differs.
func poolCommand(args []string) error {
	fs := flag.NewFlagSet("pool", flag.ContinueOnError)
	out := fs.String("out", "", "Markdown `file` to write the pooled table to (it is printed too)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: netcore-bench pool [-out file] goals.json...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("name at least one -json file of netcore-bench goals")
	}
	runs, err := pooledRuns(fs.Args())
	if err != nil {
		return err
	}
	var md strings.Builder
	writePooledMarkdown(&md, fs.Args(), runs)
	fmt.Print(md.String())
	if *out == "" {
		return nil
	}
	return os.WriteFile(*out, []byte(md.String()), 0o644)
}

// pooledRuns reads the runs of each file, numbered on from one file to the
// next.
func pooledRuns(files []string) ([]goalRun, error) {
	var runs []goalRun
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var rep goalReport
		if err := json.Unmarshal(b, &rep); err != nil {
			return nil, fmt.Errorf("%s is not the -json file of netcore-bench goals: %w", name, err)
		}
		if len(rep.Runs) == 0 {
			return nil, fmt.Errorf("%s holds no runs: is it the -json file of netcore-bench goals?", name)
		}
		for _, r := range rep.Runs {
			r.Run = len(runs) + 1
			runs = append(runs, r)
		}
	}
	return runs, nil
}

func writePooledMarkdown(w io.Writer, files []string, runs []goalRun) {
	fmt.Fprintf(w, "# netcore-bench goals, %d runs pooled\n\n", len(runs))
	fmt.Fprintf(w, "`netcore-bench pool %s`: each figure judged by its median over every run of these files, in this order.\n\n",
		strings.Join(files, " "))
	var goals []goalResult
	for _, s := range goalSpecs {
		goals = append(goals, s.judge(runs))
	}
	writeGoalTable(w, goals)
}
