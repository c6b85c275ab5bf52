package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// columnReaders read a row's columns from a message.
type columnReaders struct {
	eventID, panelName, eventTime, receivedAt *service.InterpolatedString
	log                                       *service.Logger
}

func columnReadersFromConfig(conf *service.ParsedConfig, log *service.Logger) (columnReaders, error) {
	c := columnReaders{log: log}
	fields := []struct {
		name string
		into **service.InterpolatedString
	}{
		{opFieldEventID, &c.eventID},
		{opFieldPanelName, &c.panelName},
		{opFieldEventTime, &c.eventTime},
		{opFieldReceivedAt, &c.receivedAt},
	}
	for _, f := range fields {
		v, err := conf.FieldInterpolatedString(f.name)
		if err != nil {
			return c, err
		}
		*f.into = v
	}
	return c, nil
}

// row is one event as a row of the table.
type row struct {
	id                    string
	panel                 pgtype.Text
	eventTime, receivedAt pgtype.Timestamptz
	event                 []byte
}

// rowSet is a batch of rows as one array per column, the parameters of the
// insert.
type rowSet struct {
	ids         []string
	panels      []pgtype.Text
	eventTimes  []pgtype.Timestamptz
	receivedAts []pgtype.Timestamptz
	events      []string
}

var errEmptyEventID = errors.New("the event id is empty, and a row needs one: check the " + opFieldEventID + " field (by default the metadata netcore_event_id, which netcore_explode sets)")

// unstorable is the error of an event that no retry can make a row: its own
// content is at fault (not JSON, a \u0000 jsonb refuses, a NUL in its id).
// Other failures (an empty id, a field that cannot be interpolated) may come
// from the pipeline's settings, and are tried again once those are fixed.
type unstorable struct{ error }

func (u unstorable) Unwrap() error { return u.error }

// rowFailure is a message that cannot be a row, and why.
type rowFailure struct {
	index int
	err   error
}

// rows turns the batch into rows, and lists the messages that cannot be
// rows.
func (c columnReaders) rows(batch service.MessageBatch) (rowSet, []rowFailure) {
	var failed []rowFailure
	all := make([]row, 0, len(batch))
	for i := range batch {
		r, err := c.row(batch, i)
		if err != nil {
			failed = append(failed, rowFailure{i, err})
			continue
		}
		all = append(all, r)
	}
	// Batches written in parallel take the rows' index locks in the same
	// order, so that two batches holding the same ids cannot deadlock.
	sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
	return columns(all), failed
}

// batchError fails the messages that cannot be rows, each with its reason.
func batchError(batch service.MessageBatch, failed []rowFailure) *service.BatchError {
	berr := service.NewBatchError(batch, fmt.Errorf("some events cannot be written as rows: %w", failed[0].err))
	for _, f := range failed {
		berr = berr.Failed(f.index, f.err)
	}
	return berr
}

func (c columnReaders) row(batch service.MessageBatch, i int) (row, error) {
	var r row
	var err error
	if r.event, err = batch[i].AsBytes(); err != nil {
		return r, err
	}
	// Checked here, so that one bad body fails alone, not its whole batch.
	if !json.Valid(r.event) {
		return r, unstorable{errors.New("the message is not a JSON document, and the event column is jsonb")}
	}
	if hasEscapedNUL(r.event) {
		return r, unstorable{errors.New("the event holds \\u0000, which PostgreSQL's jsonb cannot store")}
	}
	if r.id, err = batch.TryInterpolatedString(i, c.eventID); err != nil {
		return r, fmt.Errorf("%s: %w", opFieldEventID, err)
	}
	if r.id == "" {
		return r, errEmptyEventID
	}
	if strings.ContainsRune(r.id, 0) {
		return r, unstorable{errors.New("the event id holds a NUL byte, which a PostgreSQL text column cannot store")}
	}
	panel, err := batch.TryInterpolatedString(i, c.panelName)
	if err != nil {
		return r, fmt.Errorf("%s: %w", opFieldPanelName, err)
	}
	r.panel = pgtype.Text{String: panel, Valid: panel != ""}
	if r.eventTime, err = c.timestamp(batch, i, opFieldEventTime, c.eventTime); err != nil {
		return r, err
	}
	if r.receivedAt, err = c.timestamp(batch, i, opFieldReceivedAt, c.receivedAt); err != nil {
		return r, err
	}
	return r, nil
}

// timestamp reads an RFC 3339 time. One that is empty or malformed is NULL:
// the event column keeps whatever the event said, so the row is still worth
// writing, and an event is never held back for a time column.
func (c columnReaders) timestamp(batch service.MessageBatch, i int, field string, s *service.InterpolatedString) (pgtype.Timestamptz, error) {
	v, err := batch.TryInterpolatedString(i, s)
	if err != nil {
		return pgtype.Timestamptz{}, fmt.Errorf("%s: %w", field, err)
	}
	if v == "" {
		return pgtype.Timestamptz{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		c.log.Warnf("%s %q is not an RFC 3339 time: stored as NULL", field, v)
		return pgtype.Timestamptz{}, nil
	}
	return pgtype.Timestamptz{Time: t, Valid: true}, nil
}

func columns(rows []row) rowSet {
	s := rowSet{
		ids:         make([]string, len(rows)),
		panels:      make([]pgtype.Text, len(rows)),
		eventTimes:  make([]pgtype.Timestamptz, len(rows)),
		receivedAts: make([]pgtype.Timestamptz, len(rows)),
		events:      make([]string, len(rows)),
	}
	for i, r := range rows {
		s.ids[i], s.panels[i], s.eventTimes[i], s.receivedAts[i], s.events[i] = r.id, r.panel, r.eventTime, r.receivedAt, string(r.event)
	}
	return s
}

// hasEscapedNUL says whether valid JSON holds the escape \u0000 in a
// string: PostgreSQL refuses it in jsonb (SQLSTATE 22P05), and one such
// event would fail its whole batch, again and again. A backslash that is
// itself escaped (\\u0000, the text "\u0000") does not count.
func hasEscapedNUL(doc []byte) bool {
	for i := 0; i+6 <= len(doc); i++ {
		if doc[i] != '\\' {
			continue
		}
		if string(doc[i+1:i+6]) == "u0000" {
			return true
		}
		i++ // skip the escaped character, a backslash included
	}
	return false
}
