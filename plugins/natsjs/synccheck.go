package natsjs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Behind an ingest journal (a disk_queue with retain_after_ack) the output's
// events are safe from a power cut of the whole cluster only if the journal
// keeps them for longer than the servers take to fsync them. A server says
// its sync_interval in its monitoring endpoint (/varz, under
// jetstream.config), not to clients: the JetStream API does not report it.
// So it is read where the operator names the servers' monitoring URLs, and
// the start is refused if one syncs less often than the journal retains.

const (
	ojFieldJournalRetain = "journal_retain"
	ojFieldMonitorURLs   = "monitor_urls"
)

func syncCheckFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewDurationField(ojFieldJournalRetain).
			Description("The `retain_after_ack` of the disk_queue this output reads from, when it is a journal: the start is refused if `duplicate_window` is shorter (a re-published event would be stored twice), or if a server named in `monitor_urls` syncs to disk less often (an event could be deleted from the journal before the cluster has it on disk). `0s`: no journal.").
			Default("0s"),
		service.NewStringListField(ojFieldMonitorURLs).
			Description("The servers' monitoring URLs (`http: 8222` in their config), an entry may hold several separated by commas: each one's `sync_interval` is read from its `/varz` at start. A server that cannot be reached is logged, not refused, and the rule (`journal_retain` above the servers' `sync_interval`) is then the operator's to keep.").
			Default([]string{}),
	}
}

// syncCheck is what the output checks at start.
type syncCheck struct {
	retain      time.Duration
	monitorURLs []string
}

func syncCheckFromParsed(conf *service.ParsedConfig, duplicateWindow time.Duration) (c syncCheck, err error) {
	if c.retain, err = conf.FieldDuration(ojFieldJournalRetain); err != nil {
		return c, err
	}
	entries, err := conf.FieldStringList(ojFieldMonitorURLs)
	if err != nil {
		return c, err
	}
	for _, e := range entries {
		for _, u := range strings.Split(e, ",") {
			if u = strings.TrimSpace(u); u != "" {
				c.monitorURLs = append(c.monitorURLs, strings.TrimRight(u, "/"))
			}
		}
	}
	if c.retain > 0 && duplicateWindow < c.retain {
		return c, fmt.Errorf("%s %s is shorter than %s %s: an event the journal publishes again after a restart would be stored twice; set %s to at least %s", fieldDuplicateWindow, duplicateWindow, ojFieldJournalRetain, c.retain, fieldDuplicateWindow, c.retain)
	}
	return c, nil
}

// varz is what the check reads of a server's /varz.
type varz struct {
	ServerName string `json:"server_name"`
	JetStream  struct {
		Config *struct {
			SyncInterval time.Duration `json:"sync_interval"`
			SyncAlways   bool          `json:"sync_always"`
		} `json:"config"`
	} `json:"jetstream"`
}

// check reads each server's sync interval and refuses one longer than the
// journal's retention.
func (c syncCheck) check(ctx context.Context, log *service.Logger) error {
	if c.retain <= 0 {
		return nil
	}
	if len(c.monitorURLs) == 0 {
		log.Warnf("The journal retains acknowledged events for %s; no %s to check that every NATS server syncs within that (sync_interval)", c.retain, ojFieldMonitorURLs)
		return nil
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, u := range c.monitorURLs {
		v, err := readVarz(ctx, client, u)
		if err != nil {
			log.Warnf("Could not read the sync_interval of NATS server %s (%v): make sure it is at most %s", u, err, c.retain)
			continue
		}
		sync := v.JetStream.Config
		if sync == nil || sync.SyncAlways {
			continue // no JetStream there, or every write synced
		}
		// Equal is refused too: the journal would then delete a record about
		// when the server's timer syncs it, with no margin.
		if sync.SyncInterval >= c.retain {
			return fmt.Errorf("NATS server %s (%s) syncs to disk every %s, not less than the journal keeps acknowledged events (%s): a power cut of the cluster could lose events the journal already deleted; set NETCORE_JOURNAL_RETAIN above %s, or lower its sync_interval", v.ServerName, u, sync.SyncInterval, c.retain, sync.SyncInterval)
		}
		log.Infof("NATS server %s syncs every %s, within the journal's %s", v.ServerName, sync.SyncInterval, c.retain)
	}
	return nil
}

func readVarz(ctx context.Context, client *http.Client, base string) (v varz, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/varz", nil)
	if err != nil {
		return v, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("/varz answered %s", resp.Status)
	}
	return v, json.NewDecoder(resp.Body).Decode(&v)
}
