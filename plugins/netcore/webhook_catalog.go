package netcore

import (
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/catalog"
	"github.com/netcore-connect/netcore-connect/internal/inspector"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

const wiFieldCatalogDir = "catalog_dir"

func catalogField() *service.ConfigField {
	return service.NewStringField(wiFieldCatalogDir).
		Description("Where the catalog of panels is kept: every panel's field paths with their types, shares and a masked example (masked as the inspector masks, by `inspect.mask_fields`), learned from the events of stored posts off the request path, with each change flagged once (logged, counted in `netcore_schema_changes_total`, listed on the inspector's `/catalog` page). `netcore-connect catalog show` and `catalog export` read it as `catalog` in `$NETCORE_DATA_DIR`. Empty: no catalog.").
		Example("${NETCORE_DATA_DIR:./data}/" + catalog.DirName).
		Default("")
}

// openCatalog loads the catalog and starts learning into it. A catalog
// that cannot be read is left alone, not overwritten, and the receiver
// runs without one: it must never keep posts out.
func (w *webhookInput) openCatalog() {
	if w.conf.catalogDir == "" || w.learner != nil {
		return
	}
	mChanges := w.res.Metrics().NewCounter(stage.MetricSchemaChanges, "panel", "change")
	cat, err := catalog.Load(w.conf.catalogDir, catalog.Options{
		Mask: w.conf.inspectMask.CatalogMask(),
		OnChange: func(ch catalog.Change) {
			mChanges.Incr(1, w.panels.label(ch.Panel), ch.Kind)
			w.log.With("panel", ch.Panel, "path", ch.Path, "change", ch.Kind, "before", ch.Before, "after", ch.After, "request_id", ch.RequestID).Warn("Netcore events changed shape")
		},
		OnBound: func(what string) {
			w.log.Warnf("The catalog reached its bound on %s: what does not fit is counted as overflow, not kept (netcore-connect catalog show)", what)
		},
	})
	if err != nil {
		w.log.Errorf("No catalog of panels while this receiver runs: %v", err)
		return
	}
	w.learner = catalog.NewLearner(cat, w.conf.catalogDir, func(err error) { w.log.Errorf("Saving the catalog of panels: %v", err) })
	mUnlearnt := w.res.Metrics().NewCounter(stage.MetricCatalogUnlearnt)
	mUnlearnt.Incr(0) // exported from the start, for an alert or a check
	w.learner.OnUnlearnt = func(events int) { mUnlearnt.Incr(int64(events)) }
	if w.inspector != nil {
		w.inspector.ServeCatalog(catalog.Page{Catalog: cat, Mask: w.conf.inspectMask.CatalogMask(), Style: inspector.Style()})
	}
}

// learn hands a stored post's events to the catalog.
func (w *webhookInput) learn(requestID string, received time.Time, a answer) {
	if w.learner == nil {
		return
	}
	panels := make([]catalog.PostPanel, len(a.post.Panels))
	for i, p := range a.post.Panels {
		panels[i] = catalog.PostPanel{Name: p.Name, Events: p.Events}
	}
	// The events are slices of the post's data: it stays in memory, whole,
	// until they are learned.
	w.learner.OfferPost(panels, int64(cap(a.post.Data)), requestID, received)
}
