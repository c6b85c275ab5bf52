package journal

import (
	"errors"
	"net/http"
	"reflect"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// endpointRegistrar is the engine's registry of the process's HTTP server
// (the http section of a config: :4195, its basic auth, its root path).
type endpointRegistrar interface {
	RegisterEndpoint(path, desc string, h http.HandlerFunc)
}

// ServeOn serves Handler(Default) at Path on the HTTP server of the
// process res belongs to; registering it again replaces it.
//
// The engine's public API (v4.60.0) lets plugins use that server only
// through its resources' unwrapper, which it marks for its own use: an
// engine that changes it fails here, with this error, rather than running
// without the endpoint (tests/journal_test.go calls it through the binary).
func ServeOn(res *service.Resources) error {
	unwrap := reflect.ValueOf(res.XUnwrapper()).MethodByName("Unwrap")
	if !unwrap.IsValid() || unwrap.Type().NumIn() != 0 || unwrap.Type().NumOut() != 1 {
		return errEngine
	}
	reg, ok := unwrap.Call(nil)[0].Interface().(endpointRegistrar)
	if !ok {
		return errEngine
	}
	reg.RegisterEndpoint(Path, "POST: the journals (disk_queue with retain_after_ack) publish again every record they retain.", Handler(Default))
	return nil
}

var errEngine = errors.New("this engine offers no HTTP endpoints to plugins: the journal's " + Path + " cannot be served (build netcore-connect with the engine version go.mod names)")
