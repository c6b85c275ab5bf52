package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/netcore-connect/netcore-connect/internal/catalog"
	"github.com/netcore-connect/netcore-connect/internal/durabledir"
	"github.com/netcore-connect/netcore-connect/internal/inspector"
)

// catalogCommand is `netcore-connect catalog`: the catalog of panels the
// receiver learns, as text or as JSON Schemas.
func catalogCommand() *cli.Command {
	dataDir := dataDirOf("the catalog", catalog.DirName)
	return &cli.Command{
		Name:  "catalog",
		Usage: "Show the catalog of panels learned from what Netcore sends, or export it as JSON Schemas",
		Description: `The receiver learns every panel's fields from the events it stores and
flags each change of their shape (docs/catalog.md). Both commands read
$NETCORE_DATA_DIR/catalog, also while the receiver runs (it writes the
catalog every 10 s, and within a second of a change).

  netcore-connect catalog show
  netcore-connect catalog export ./contract

export writes one JSON Schema (draft 2020-12) per panel, DIR/<panel>.json,
a panel name that is not a safe file name escaped as %XX (see the docs);
NETCORE_CONTRACT_DIR=DIR then checks events against them.`,
		Subcommands: []*cli.Command{
			{Name: "show", Usage: "Each panel's fields as a tree (types, share of events, example), then the changes", Flags: []cli.Flag{dataDir}, Action: catalogShow},
			{Name: "export", Usage: "Write one JSON Schema per panel into DIR", ArgsUsage: "DIR", Flags: []cli.Flag{dataDir}, Action: catalogExport},
		},
	}
}

func readCatalog(c *cli.Context) (catalog.View, error) {
	cat, err := catalog.Load(filepath.Join(c.String(dataDirFlag), catalog.DirName), catalog.Options{})
	if err != nil {
		return catalog.View{}, cli.Exit(err.Error(), 1)
	}
	return cat.View(), nil
}

func catalogShow(c *cli.Context) error {
	v, err := readCatalog(c)
	if err != nil {
		return err
	}
	mask, err := showMask()
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	v.Masked(mask).Write(c.App.Writer)
	return nil
}

// showMask masks the examples catalog show prints as the inspector masks
// them now (NETCORE_INSPECT_MASK, or its default fields), whatever rules
// they were kept under.
func showMask() (func(path string, value []byte) string, error) {
	fields := inspector.DefaultMaskFields
	if v, ok := lookupNonEmpty(context.Background(), "NETCORE_INSPECT_MASK"); ok {
		fields = []string{v}
	}
	rules, err := inspector.ParseMask(fields)
	if err != nil {
		return nil, fmt.Errorf("NETCORE_INSPECT_MASK: %w", err)
	}
	return rules.CatalogMask(), nil
}

func catalogExport(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("name the folder to write the schemas in: netcore-connect catalog export DIR", 2)
	}
	dir := c.Args().First()
	v, err := readCatalog(c)
	if err != nil {
		return err
	}
	if err := durabledir.Make(dir); err != nil {
		return cli.Exit(err.Error(), 1)
	}
	for _, p := range v.Panels {
		doc, err := p.Schema()
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, catalog.SchemaFile(p.Name)), append(doc, '\n'), 0o644)
		}
		if err != nil {
			return cli.Exit(fmt.Sprintf("writing the schema of panel %q: %v", p.Name, err), 1)
		}
		fmt.Fprintf(c.App.Writer, "%s  %s  (%d events learned, %d fields)\n", filepath.Join(dir, catalog.SchemaFile(p.Name)), p.Name, p.Learned, len(p.Rows))
	}
	fmt.Fprintf(c.App.Writer, "%d panel schemas written to %s\n", len(v.Panels), dir)
	return nil
}
