package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/netcore-connect/netcore-connect/internal/journal"
)

const urlFlag = "url"

// journalCommand is `netcore-connect journal`: what an operator asks of
// the journal of a running ingest instance (config/scale-out/ingest.yaml).
func journalCommand() *cli.Command {
	url := &cli.StringFlag{
		Name:  urlFlag,
		Value: "http://" + defaultAdminAddress,
		Usage: "the running instance's HTTP server (its http.address, NETCORE_ADMIN_ADDRESS)",
	}
	return &cli.Command{
		Name:  "journal",
		Usage: "Ask a running ingest instance's journal (a disk_queue with retain_after_ack) to publish again what it retains",
		Description: `An ingest instance of config/scale-out/ingest.yaml keeps each post in its
journal for NETCORE_JOURNAL_RETAIN after the stream acknowledged it. It
publishes all of it again by itself when its NATS connection comes back
after losing every server, and at a start. republish asks for the same
now, without a restart (a stream deleted and created again, a cluster you
know lost its unsynced tail):

  netcore-connect journal republish --url http://10.0.0.5:4195

The stream drops what it still has (Nats-Msg-Id, within its duplicate
window); the rest is stored and delivered again.`,
		Subcommands: []*cli.Command{
			{Name: "republish", Usage: "Publish again every record the journal retains", Flags: []cli.Flag{url}, Action: journalRepublish},
		},
	}
}

func journalRepublish(c *cli.Context) error {
	target := strings.TrimSuffix(c.String(urlFlag), "/") + journal.Path
	client := &http.Client{Timeout: time.Minute} // it reads the retained records from the file
	resp, err := client.Post(target, "", nil)
	if err != nil {
		return cli.Exit(fmt.Sprintf("asking %s: %v: is the instance running, and is --%s its http.address?", target, err, urlFlag), 1)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return cli.Exit(fmt.Sprintf("%s answered %s: %s", target, resp.Status, strings.TrimSpace(string(body))), 1)
	}
	var res journal.Result
	if err := json.Unmarshal(body, &res); err != nil {
		return cli.Exit(fmt.Sprintf("%s answered what is not a journal's result (%v): %s", target, err, body), 1)
	}
	fmt.Fprintf(c.App.Writer, "handed out again %d records (%d events) from %d journals; %d posts with events out go again once those settle\n",
		res.Records, res.Events, res.Journals, res.Pending)
	return nil
}
