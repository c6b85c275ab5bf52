package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/netcore-connect/netcore-connect/internal/quarantine"
)

// Flags of the quarantine commands.
const (
	dataDirFlag = "data-dir"
	clientFlag  = "client"
	waitFlag    = "wait"
)

// dataDirOf is the --data-dir flag of a command that reads what, the
// folder named folder in the receiver's data directory.
func dataDirOf(what, folder string) *cli.StringFlag {
	return &cli.StringFlag{
		Name:    dataDirFlag,
		Value:   "./data",
		EnvVars: []string{"NETCORE_DATA_DIR"},
		Usage:   "the receiver's data directory; " + what + " is its folder " + folder,
	}
}

// quarantineCommand is `netcore-connect quarantine`: what is held from
// addresses outside the allowlist, and releasing or dropping it.
func quarantineCommand() *cli.Command {
	dataDir := dataDirOf("the quarantine", quarantine.DirName)
	client := &cli.StringFlag{Name: clientFlag, Required: true, Usage: "the address whose posts to take, as `quarantine list` shows it"}
	wait := &cli.DurationFlag{Name: waitFlag, Value: 10 * time.Minute, Usage: "how long to wait for the running receiver to finish"}
	return &cli.Command{
		Name:  "quarantine",
		Usage: "List, release or drop the posts kept from addresses outside the allowlist (NETCORE_UNKNOWN_SOURCES=quarantine)",
		Description: `With NETCORE_UNKNOWN_SOURCES=quarantine, a valid post from an address
outside NETCORE_ALLOWED_IPS is kept in $NETCORE_DATA_DIR/quarantine and
answered 200, and nothing of it is delivered until you decide:

  netcore-connect quarantine list
  netcore-connect quarantine release --client 203.0.113.7
  netcore-connect quarantine drop --client 198.51.100.9

release hands the address's posts to the running receiver, which stores
them in its delivery queue (repeats removed as for any post) and then
deletes them from the quarantine; add the address to NETCORE_ALLOWED_IPS
(and restart) first, or its next posts are quarantined again. Stopped
midway, nothing is lost: the rest stays held and is released at the next
start, and a post stored twice is removed as a repeat within the queue's
dedupe window. drop deletes them, through the running receiver or, when
none runs, itself. list reads beside a running receiver.`,
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "One line per address: posts, events, panels, first and last seen", Flags: []cli.Flag{dataDir}, Action: quarantineList},
			{Name: quarantine.OpRelease, Usage: "Deliver an address's posts (through the running receiver)", Flags: []cli.Flag{dataDir, client, wait}, Action: quarantineRelease},
			{Name: quarantine.OpDrop, Usage: "Delete an address's posts", Flags: []cli.Flag{dataDir, client, wait}, Action: quarantineDrop},
		},
	}
}

func quarantineDir(c *cli.Context) string {
	return filepath.Join(c.String(dataDirFlag), quarantine.DirName)
}

func quarantineList(c *cli.Context) error {
	clients, err := quarantine.List(quarantineDir(c))
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	printClients(c.App.Writer, quarantineDir(c), clients)
	return nil
}

// printClients prints one line per address, then how to take them out.
func printClients(w io.Writer, dir string, clients []quarantine.Client) {
	if len(clients) == 0 {
		fmt.Fprintf(w, "the quarantine (%s) holds no posts\n", dir)
		return
	}
	var bytes int64
	for _, cl := range clients {
		bytes += cl.Bytes
		fmt.Fprintf(w, "%s  posts %d  events %d  bytes %d  panels %s  first %s  last %s\n",
			cl.Address, cl.Posts, cl.Events, cl.Bytes, strings.Join(cl.PanelNames(), ","),
			cl.First.UTC().Format(time.RFC3339), cl.Last.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "%d addresses, %d bytes held in %s, none of it delivered\n", len(clients), bytes, dir)
	fmt.Fprintln(w, "deliver an address's posts: netcore-connect quarantine release --client ADDRESS (then add it to NETCORE_ALLOWED_IPS)")
	fmt.Fprintln(w, "delete them:                netcore-connect quarantine drop --client ADDRESS")
}

// clientAddress reads --client, as list prints it.
func clientAddress(c *cli.Context) (netip.Addr, error) {
	addr, err := netip.ParseAddr(c.String(clientFlag))
	if err != nil || addr.Zone() != "" {
		return addr, cli.Exit(fmt.Sprintf("--%s %q is not an IP address: give one as `netcore-connect quarantine list` prints it", clientFlag, c.String(clientFlag)), 2)
	}
	// The receiver keeps IPv4-mapped IPv6 clients as IPv4, as it matches them.
	return addr.Unmap(), nil
}

func quarantineRelease(c *cli.Context) error {
	addr, err := clientAddress(c)
	if err != nil {
		return err
	}
	dir := quarantineDir(c)
	if !quarantine.Owned(dir) {
		return cli.Exit(fmt.Sprintf("no netcore-connect holds the quarantine %s (none runs on this data directory, or it runs with NETCORE_UNKNOWN_SOURCES=refuse and held nothing when it started): release hands the posts to the receiver, which stores them in its delivery queue. Start it with NETCORE_UNKNOWN_SOURCES=quarantine and run this again", dir), 1)
	}
	res, err := ask(c, dir, quarantine.Request{Op: quarantine.OpRelease, Client: addr.String()})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "released %d posts (%d events) of %s into the delivery queue\n", res.Posts, res.Events, addr)
	if !res.Allowed {
		prefix := netip.PrefixFrom(addr, addr.BitLen())
		fmt.Fprintf(c.App.Writer, "%s is not in the receiver's NETCORE_ALLOWED_IPS: to let its posts in from now on, add %s and restart; posts it sends meanwhile are quarantined (release again then)\n", addr, prefix)
	}
	return nil
}

func quarantineDrop(c *cli.Context) error {
	addr, err := clientAddress(c)
	if err != nil {
		return err
	}
	dir := quarantineDir(c)
	req := quarantine.Request{Op: quarantine.OpDrop, Client: addr.String()}
	var res quarantine.Result
	if quarantine.Owned(dir) {
		res, err = ask(c, dir, req)
	} else {
		res, err = dropHere(dir, req.Client)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "dropped %d posts (%d events) of %s\n", res.Posts, res.Events, addr)
	return nil
}

// dropHere drops an address's posts with no receiver running, holding the
// quarantine's lock so that none starts meanwhile.
func dropHere(dir, client string) (quarantine.Result, error) {
	if _, err := os.Stat(dir); err != nil {
		return quarantine.Result{}, cli.Exit(fmt.Sprintf("no quarantine at %s (%v): is --%s right?", dir, err, dataDirFlag), 1)
	}
	store, err := quarantine.Open(dir, quarantine.Limits{})
	if errors.Is(err, quarantine.ErrOwned) {
		return quarantine.Result{}, cli.Exit(fmt.Sprintf("%v: a receiver started meanwhile; run this again", err), 1)
	}
	if err != nil {
		return quarantine.Result{}, cli.Exit(err.Error(), 1)
	}
	defer store.Close()
	res, err := store.Drop(context.Background(), client)
	if err != nil {
		return res, cli.Exit(fmt.Sprintf("drop stopped after %d posts: %v", res.Posts, err), 1)
	}
	return res, nil
}

// ask has the running receiver serve req, and says what it did.
func ask(c *cli.Context, dir string, req quarantine.Request) (quarantine.Result, error) {
	ctx, cancel := context.WithTimeout(c.Context, c.Duration(waitFlag))
	defer cancel()
	res, err := quarantine.Ask(ctx, dir, req)
	if err != nil {
		return res, cli.Exit(fmt.Sprintf("%s of %s: %v", req.Op, req.Client, err), 1)
	}
	if res.Error != "" {
		return res, cli.Exit(fmt.Sprintf("%s of %s stopped after %d posts (%d events); the rest is still held: %s", req.Op, req.Client, res.Posts, res.Events, res.Error), 1)
	}
	return res, nil
}
