package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"sync/atomic"
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
		Usage: "the running instance's HTTP server (its http.address, NETCORE_ADMIN_ADDRESS); with http.basic_auth on, give the user in it: http://user:pass@host:4195",
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
	req, err := http.NewRequestWithContext(c.Context, http.MethodPost, strings.TrimSuffix(c.String(urlFlag), "/")+journal.Path, nil)
	if err != nil {
		return cli.Exit(fmt.Sprintf("--%s: %v", urlFlag, err), 1)
	}
	target := req.URL.Redacted() // what is said of it keeps the password out
	resp, err := post(req)
	if err != nil {
		return cli.Exit(fmt.Sprintf("asking %s: %v", target, err), 1)
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

// republishTimeout is how long the command waits for the journal, which
// reads what it retains from its file before it answers.
const republishTimeout = time.Minute

// post sends req, and says what its failure means: a request the instance
// got goes on after the command gave up waiting.
func post(req *http.Request) (*http.Response, error) {
	var reached atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { reached.Store(true) }}
	client := &http.Client{Timeout: republishTimeout}
	resp, err := client.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	switch {
	case err == nil:
		return resp, nil
	case reached.Load() && os.IsTimeout(err):
		return nil, fmt.Errorf("no answer within %s: the journal may still be publishing again; check its log, and netcore_journal_republished_events_total on its /metrics", republishTimeout)
	default:
		return nil, fmt.Errorf("%w: is the instance running, and is --%s its http.address?", err, urlFlag)
	}
}
