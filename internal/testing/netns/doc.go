// Package netns builds throwaway networks out of Linux network namespaces,
// so that a test can cut a real link between real processes, as a pulled
// cable or a failed switch port would, and heal it again.
//
// A Lab is one such network: a hub namespace holding bridges (switches),
// and hosts, each a namespace of its own joined to bridges by veth pairs. A
// Link is the hub's end of one veth pair: Cut sets it down, so that the
// host's packets on that link are dropped in silence and the host sees
// nothing but silence, exactly like a partition; Heal sets it up again.
//
// Nothing in a Lab can reach, or be reached from, any real network: the
// test's own namespace is never changed (no address, route or device is
// added to it), hosts have only the addresses the test gives them and no
// default route, and forwarding is off in every namespace of the lab.
// Processes run in a host with Host.Command; the test process itself opens
// sockets in a host with Host.Listen and Host.DialContext.
//
// Files:
//   - lab.go: the lab, its bridges, hosts and links, made and removed with
//     the ip command;
//   - socket.go: running a function, and so opening a socket, inside a
//     host's namespace.
//
// Making namespaces needs root: Check says why a lab cannot be made here.
package netns
