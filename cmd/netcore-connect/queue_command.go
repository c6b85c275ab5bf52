package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/urfave/cli/v2"

	"github.com/netcore-connect/netcore-connect/internal/durabledir"
	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
	"github.com/netcore-connect/netcore-connect/internal/stage"
	"github.com/netcore-connect/netcore-connect/plugins/deadletter"
	"github.com/netcore-connect/netcore-connect/plugins/diskqueue"
)

// queueCommand is `netcore-connect queue`: looking into a queue file, and
// getting the events of a damaged one back.
func queueCommand() *cli.Command {
	return &cli.Command{
		Name:  "queue",
		Usage: "Look into a disk queue file, or get the events of a damaged one back",
		Subcommands: []*cli.Command{
			{
				Name:      "stats",
				Usage:     "Count what waits in a queue file: events, bytes, the oldest, damaged records",
				ArgsUsage: "FILE",
				Action:    queueStats,
			},
			{
				Name:  "salvage",
				Usage: "Copy every event whose checksum holds from a damaged queue file into dead letter files",
				Description: `Reads the file's pages itself, so that a damaged page costs only its own
events. The events are written as dead letter files in OUT_DIR, which
config/replay-dead-letters.yaml sends to Meiro Events:

  netcore-connect queue salvage data/queue/events.db data/dead-letter
  MEIRO_EVENTS_URL=... netcore-connect run config/replay-dead-letters.yaml

The default pipeline stores each post whole, as one record: salvage splits
it into events as the queue would have (panel_name, event_time and
event_id added), reading event_params.ts in --timezone, which must be the
pipeline's explode timezone (NETCORE_TIMEZONE). Every event of a post is
salvaged, so the events of a post that was partly delivered before the
damage may be sent again (with the same event_id).

A file that a running netcore-connect holds is refused, as queue stats
refuses it (the file is locked): its events are being delivered, and
copies of them as dead letters would be sent twice. Stop the receiver
first. --force salvages a locked file all the same: only for a receiver
known to be dead whose lock remains (on a network file system, say).

Move the damaged file aside before starting the receiver again.`,
				ArgsUsage: "DAMAGED.db OUT_DIR",
				Flags: []cli.Flag{
					&cli.BoolFlag{
						Name:  forceFlag,
						Usage: "salvage the file even though it is locked: only when the netcore-connect that holds it is known to be dead",
					},
					&cli.StringFlag{
						Name:  "timezone",
						Value: netcorepost.DefaultTimezone,
						Usage: "the IANA zone event_params.ts is written in, as the disk_queue's explode timezone",
					},
				},
				Action: queueSalvage,
			},
		},
	}
}

func queueStats(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("usage: netcore-connect queue stats FILE", 2)
	}
	stats, err := diskqueue.ReadFileStats(c.Args().First())
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	fmt.Fprintf(c.App.Writer, "events waiting: %d\nbytes: %d\n", stats.Events, stats.Bytes)
	if !stats.Oldest.IsZero() {
		fmt.Fprintf(c.App.Writer, "oldest: %s (%s ago)\n", stats.Oldest.UTC().Format(time.RFC3339), time.Since(stats.Oldest).Round(time.Second))
	}
	fmt.Fprintf(c.App.Writer, "damaged records (moved aside): %d\n", stats.Damaged)
	return nil
}

// forceFlag makes queue salvage read a file that is locked.
const forceFlag = "force"

// salvageFileEvents is how many events each dead letter file of a salvage
// holds: files stay small enough to replay and delete one at a time.
const salvageFileEvents = 1000

func queueSalvage(c *cli.Context) error {
	if c.NArg() != 2 {
		return cli.Exit("usage: netcore-connect queue salvage [--timezone ZONE] [--force] DAMAGED.db OUT_DIR", 2)
	}
	from, outDir := c.Args().Get(0), c.Args().Get(1)
	explode, err := salvageExploder(c.String("timezone"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if !c.Bool(forceFlag) {
		release, err := diskqueue.HoldLock(from)
		if err != nil {
			return cli.Exit(fmt.Sprintf("salvage refused: %v: stop it first (its events are being delivered); if it is known to be dead, --%s salvages the file all the same", err, forceFlag), 1)
		}
		defer release()
	}
	// The dead letters are soon the only copy of these events: their folder
	// must survive a power cut too.
	if err := durabledir.Make(outDir); err != nil {
		return cli.Exit(fmt.Sprintf("creating %s: %v", outDir, err), 1)
	}
	reason := fmt.Sprintf("salvaged from the damaged queue file %s", from)
	var batch service.MessageBatch
	files := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := deadletter.WriteFile(outDir, batch, stage.MetaPrefix, time.Now().UTC()); err != nil {
			return err
		}
		files++
		batch = batch[:0]
		return nil
	}
	report, err := diskqueue.Salvage(from, explode, func(_ uint64, msg *service.Message) error {
		msg.MetaSetMut(stage.MetaFallbackError, reason)
		batch = append(batch, msg)
		if len(batch) == salvageFileEvents {
			return flush()
		}
		return nil
	})
	err = errors.Join(err, flush())
	fmt.Fprintf(c.App.Writer, "salvaged %d events into %d dead letter files in %s\n", report.Records, files, outDir)
	if report.Posts > 0 {
		fmt.Fprintf(c.App.Writer, "they include every event of %d whole posts: the events of a post already partly delivered will be sent again (with the same event_id)\n", report.Posts)
	}
	fmt.Fprintf(c.App.Writer, "could not read: %d damaged records, %d garbled pages (of %d scanned)\n", report.Damaged, report.UnreadablePages, report.Pages)
	if !report.FreeListKnown {
		fmt.Fprintln(c.App.Writer, "the file's free list was unreadable: freed pages were read too, so some events may have been delivered already and will be sent again")
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("salvage stopped: %v", err), 1)
	}
	return nil
}

// salvageExploder is the disk_queue's explode with the default field names
// (those of config/netcore-to-meiro.yaml) and the zone given, so that
// salvaged events are what the queue would have sent.
func salvageExploder(timezone string) (*netcorepost.Exploder, error) {
	// Through the config spec, so that defaults and checks are explode's own.
	conf, err := service.NewConfigSpec().Fields(netcorepost.ExplodeFields("")...).ParseYAML(fmt.Sprintf("timezone: %q", timezone), nil)
	if err != nil {
		return nil, fmt.Errorf("--timezone %q: %w", timezone, err)
	}
	explode, err := netcorepost.NewExploder(conf)
	if err != nil {
		return nil, fmt.Errorf("--timezone: %w: give an IANA zone, as the pipeline's explode timezone (e.g. Asia/Kolkata, UTC)", err)
	}
	return explode, nil
}
