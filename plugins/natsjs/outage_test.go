package natsjs

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// A connection that moves to another server when its own goes calls no
// hook; one that comes back after losing every server calls it, once. Any
// lost connection tells of it, so that the journals pause their deletions.
func TestTheHookRunsOnlyWhenEveryServerWasLost(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	servers := []*server.Server{
		startServer(t, server.Options{Port: -1, StoreDir: dirs[0]}),
		startServer(t, server.Options{Port: -1, StoreDir: dirs[1]}),
	}
	conf, err := outputSpec().ParseYAML(fmt.Sprintf("urls: [ %q, %q ]", servers[0].ClientURL(), servers[1].ClientURL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := streamConfigFromParsed(conf)
	if err != nil {
		t.Fatal(err)
	}
	var calls, lost atomic.Int32
	c.allLostAndBack = func() { calls.Add(1) }
	c.connectionLost = func() { lost.Add(1) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, _, err := c.connect(ctx, "test", service.MockResources().Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	on := func() int {
		for i, s := range servers {
			if s.ClientURL() == nc.ConnectedUrl() {
				return i
			}
		}
		return -1
	}
	waitConnectedTo := func(what string, i int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !nc.IsConnected() || on() != i {
			if time.Now().After(deadline) {
				t.Fatalf("not reconnected to %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // the callbacks run after
	}

	first := on()
	other := 1 - first
	servers[first].Shutdown()
	waitConnectedTo("the other server", other)
	if n := calls.Load(); n != 0 {
		t.Fatalf("the hook ran %d times when the connection moved to the other server", n)
	}
	if lost.Load() == 0 {
		t.Fatal("losing a server told nothing of it: the journals would delete what they retain")
	}

	port := servers[other].Addr().(*net.TCPAddr).Port
	servers[other].Shutdown()
	time.Sleep(time.Second) // every server refuses meanwhile
	servers[other] = startServer(t, server.Options{Port: port, StoreDir: dirs[other]})
	waitConnectedTo("the server started again", other)
	if n := calls.Load(); n != 1 {
		t.Errorf("the hook ran %d times when the connection came back after losing every server, want once", n)
	}
}
