package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// poolCommand judges the goals over the repetitions of several goals runs
// at once (their -json files): on these shared cores one repetition's ratio
// moves by up to half, so a median of three cannot tell a goal met from one
// missed near its threshold, and a median of nine or fifteen can. Each
// figure is judged over the repetitions that measured it.
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
		return errors.New("name at least one -json file of netcore-bench goals")
	}
	reports, err := readGoalReports(fs.Args())
	if err != nil {
		return err
	}
	var md strings.Builder
	writePooledMarkdown(&md, fs.Args(), reports)
	fmt.Print(md.String())
	if *out == "" {
		return nil
	}
	if err := os.WriteFile(*out, []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("writing the pooled table: %w", err)
	}
	return nil
}

// readGoalReports reads the -json file of each goals run in files.
func readGoalReports(files []string) ([]goalReport, error) {
	var reports []goalReport
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading a goals report: %w", err)
		}
		var rep goalReport
		if err := json.Unmarshal(b, &rep); err != nil {
			return nil, fmt.Errorf("%s is not the -json file of netcore-bench goals: %w", name, err)
		}
		if len(rep.Runs) == 0 {
			return nil, fmt.Errorf("%s holds no repetitions: is it the -json file of netcore-bench goals?", name)
		}
		reports = append(reports, rep)
	}
	return reports, nil
}

// writePooledMarkdown writes where each file's repetitions come from, then
// the goals judged over all of them.
func writePooledMarkdown(w io.Writer, files []string, reports []goalReport) {
	var runs []goalRun
	var names []string // of each run, for the journal's table
	for i, rep := range reports {
		runs = append(runs, rep.Runs...)
		for _, g := range rep.Runs {
			names = append(names, fmt.Sprintf("%s, run %d", filepath.Base(files[i]), g.Run))
		}
	}
	fmt.Fprintf(w, "# netcore-bench goals, %d repetitions from %d files\n\n", len(runs), len(files))
	fmt.Fprintf(w, "`netcore-bench pool %s`: each figure judged by its median over the repetitions that measured it, in the order of the files:\n\n",
		strings.Join(files, " "))
	for i, rep := range reports {
		m := rep.Meta
		binary := "a build of the repository"
		if m.Binary != "" {
			binary = "`" + m.Binary + "`"
		}
		fmt.Fprintf(w, "- %s: %d repetitions of %.0f s at %s, ours %s; %s, %d cores, %s\n",
			files[i], len(rep.Runs), m.RunSeconds, m.Date, binary, m.CPU, m.Cores, m.GoVersion)
	}
	fmt.Fprintln(w)
	writeGoalTable(w, judgeGoals(runs))
	writeJournalTable(w, runs, names)
}
