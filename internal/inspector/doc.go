// Package inspector is the read-only web page of the latest posts a
// receiver took or refused and what became of each of their events
// (delivered, waiting and why, dead-lettered, a repeat), with the state of
// the pipeline at the top: what an operator checks while setting Netcore up
// ("did my post arrive, did it reach Meiro Events"), without reading logs.
//
// It lives in internal/, not in plugins/netcore beside the input that
// serves it: it is no Benthos component (it registers nothing and reads no
// config), and what it needs of the receiver is narrow, so it is reached
// through that alone: Add tells it of each request (Request), and a Gate
// says who besides a loopback peer may open the page, by the receiver's own
// allowlist and trusted proxies. Its fates come from the process's fate
// book (internal/fate), which the disk queue and the dead letter keeper
// report to; New turns the book on. A change to the page, its views or its
// masking is made here without reading the webhook, and the webhook's
// request path is read without the page's thousand lines.
//
// Personal fields are masked by default (Mask, DefaultMaskFields): in
// events as shown, in search (what is searched is what is shown), and in
// refusal and error texts that may quote an event, by the event's own masked
// values and by any JSON found in the text.
//
// inspector.go: what is kept, who is admitted; view.go: each view's model;
// page.go, chart.go: the HTML and SVG; mask*.go: masking.
package inspector
