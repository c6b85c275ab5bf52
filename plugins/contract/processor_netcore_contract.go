package contract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/netcore-connect/netcore-connect/internal/catalog"
	"github.com/netcore-connect/netcore-connect/internal/stage"
	"github.com/netcore-connect/netcore-connect/plugins/deadletter"
)

const (
	ncFieldDir           = "dir"
	ncFieldMode          = "mode"
	ncFieldDeadLetterDir = "dead_letter_dir"
	modeDeliver          = "deliver"
	modeEnforce          = "enforce"
	// logEvery bounds the log lines of violations: the metric counts them
	// all.
	logEvery = 10 * time.Second
)

func contractSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Checks each event against its panel's JSON Schema, as `netcore-connect catalog export` writes them: a violating event is delivered and counted, or kept as a dead letter.").
		Description(`
The panel of an event is its `+"`"+stage.MetaPanel+"`"+` metadata (set when a post is split into events); its schema is the file `+"`<panel>.json`"+` in `+"`dir`"+`, the panel name escaped as `+"`catalog export`"+` escapes it. An event of a panel with no schema there passes unchecked. The schemas are read once, at start: a schema that does not compile stops the start, naming the file.

A violating event is counted in `+"`"+stage.MetricContractViolations+"`"+` and logged (one line every 10 s at most, with the schema's error), then:

- `+"`deliver`"+` (default): delivered all the same;
- `+"`enforce`"+`: kept as a dead letter in `+"`dead_letter_dir`"+`, its `+"`error`"+` the schema's error, and not delivered; replay it (after fixing the schema or the journey) as any dead letter. If the dead letter cannot be written, the event is delivered and the failure logged: nothing is lost.

With `+"`dir`"+` empty, nothing is checked.`).
		Fields(
			service.NewStringField(ncFieldDir).
				Description("The folder of schemas, one `<panel>.json` each (JSON Schema draft 2020-12 unless a schema says another). Empty: nothing checked.").
				Example("${NETCORE_CONTRACT_DIR:}").
				Default(""),
			service.NewStringEnumField(ncFieldMode, modeDeliver, modeEnforce).
				Description("What becomes of a violating event: `deliver` it (counted and logged), or `enforce` the contract (kept as a dead letter, not delivered).").
				Default(modeDeliver),
			service.NewStringField(ncFieldDeadLetterDir).
				Description("Where `enforce` keeps violating events as dead letters.").
				Example("${NETCORE_DATA_DIR:./data}/dead-letter").
				Default(""),
		)
}

func init() {
	service.MustRegisterBatchProcessor("netcore_contract", contractSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.BatchProcessor, error) {
			return newContract(conf, res)
		})
}

// contract checks events against their panel's schema.
type contract struct {
	schemas     map[string]*jsonschema.Schema // by file name
	enforce     bool
	deadLetters *deadletter.Keeper
	log         *service.Logger
	violations  *service.MetricCounter
	lastLog     atomic.Int64 // unix nanoseconds of the last line logged
}

func newContract(conf *service.ParsedConfig, res *service.Resources) (*contract, error) {
	dir, err := conf.FieldString(ncFieldDir)
	if err != nil {
		return nil, err
	}
	mode, err := conf.FieldString(ncFieldMode)
	if err != nil {
		return nil, err
	}
	deadLetterDir, err := conf.FieldString(ncFieldDeadLetterDir)
	if err != nil {
		return nil, err
	}
	c := &contract{enforce: mode == modeEnforce, log: res.Logger(),
		violations: res.Metrics().NewCounter(stage.MetricContractViolations)}
	c.violations.Incr(0) // exported from the start, for dashboards and alerts
	if dir == "" {
		return c, nil
	}
	if c.schemas, err = loadSchemas(dir); err != nil {
		return nil, err
	}
	if c.enforce {
		if deadLetterDir == "" {
			return nil, fmt.Errorf("%s is %s but %s is empty: name the folder for the events the contract refuses", ncFieldMode, modeEnforce, ncFieldDeadLetterDir)
		}
		c.deadLetters = deadletter.NewKeeper(deadLetterDir, stage.MetaPrefix, res)
		if err := c.deadLetters.Prepare(); err != nil {
			return nil, err
		}
	}
	c.log.Infof("Checking events against the %d panel schemas of %s (%s)", len(c.schemas), dir, mode)
	return c, nil
}

// loadSchemas compiles every *.json of dir.
func loadSchemas(dir string) (map[string]*jsonschema.Schema, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("the contract's folder: %w (write it with netcore-connect catalog export DIR)", err)
	}
	schemas := map[string]*jsonschema.Schema{}
	compiler := jsonschema.NewCompiler()
	for _, f := range files {
		s, err := compile(compiler, f)
		if err != nil {
			return nil, fmt.Errorf("the contract's schema %s: %w", f, err)
		}
		schemas[filepath.Base(f)] = s
	}
	return schemas, nil
}

// compile reads and compiles one schema, under its file's URL: a file name
// with % in it (an escaped panel name) is the name itself, not an escape.
func compile(compiler *jsonschema.Compiler, file string) (*jsonschema.Schema, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	id := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	if err := compiler.AddResource(id, doc); err != nil {
		return nil, err
	}
	return compiler.Compile(id)
}

func (c *contract) ProcessBatch(_ context.Context, batch service.MessageBatch) ([]service.MessageBatch, error) {
	if len(c.schemas) == 0 {
		return []service.MessageBatch{batch}, nil
	}
	out := batch[:0:0]
	for _, msg := range batch {
		err := c.check(msg)
		if err == nil || !c.enforce {
			out = append(out, msg)
			continue
		}
		if kerr := c.deadLetters.Keep(service.MessageBatch{deadletter.WithReason(msg, err)}, "refused by the contract"); kerr != nil {
			c.log.Errorf("Delivering an event the contract refuses, as it could not be kept as a dead letter: %v", kerr)
			out = append(out, msg)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return []service.MessageBatch{out}, nil
}

// check validates msg against its panel's schema, counting and logging a
// violation.
func (c *contract) check(msg *service.Message) error {
	panel, _ := msg.MetaGet(stage.MetaPanel)
	file := catalog.SchemaFile(panel)
	s := c.schemas[file]
	if s == nil {
		return nil
	}
	body, err := msg.AsBytes()
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err == nil {
		err = s.Validate(v)
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("violates the contract %s: %s", file, oneLine(err))
	c.violations.Incr(1)
	if now, last := time.Now().UnixNano(), c.lastLog.Load(); now-last >= int64(logEvery) && c.lastLog.CompareAndSwap(last, now) {
		id, _ := msg.MetaGet(stage.MetaEventID)
		c.log.With("panel", panel, "event_id", id, "enforce", c.enforce).Warnf("An event %v", err)
	}
	return err
}

// oneLine is a validation error on one line, for a log line and a dead
// letter's error.
func oneLine(err error) string {
	var verr *jsonschema.ValidationError
	if errors.As(err, &verr) {
		return strings.Join(strings.Fields(fmt.Sprintf("%v", verr)), " ")
	}
	return err.Error()
}

func (c *contract) Close(context.Context) error { return nil }
