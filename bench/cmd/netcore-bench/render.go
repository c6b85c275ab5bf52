package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// renderCommand writes the Markdown report of a goals run again from its
// -json file: the figures and the header (command, date, machine) as
// measured, the goals judged by this version, so that a report gains what
// a later version shows of the same figures without running again.
func renderCommand(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	out := fs.String("out", "", "Markdown `file` to write (default: the -json file's name ending in .md)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: netcore-bench render [-out file.md] goals.json")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("name one -json file of netcore-bench goals")
	}
	reports, err := readGoalReports(fs.Args())
	if err != nil {
		return err
	}
	rep := reports[0]
	rep.Goals = judgeGoals(rep.Runs)
	rep.renderedFrom = fs.Arg(0)
	var md strings.Builder
	writeGoalMarkdown(&md, rep)
	fmt.Print(md.String())
	name := *out
	if name == "" {
		name = strings.TrimSuffix(fs.Arg(0), ".json") + ".md"
	}
	if err := os.WriteFile(name, []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("writing the report (is -out's folder there and writable?): %w", err)
	}
	return nil
}
