// Package plugkit holds the few small helpers that several of our plugins
// share, so that each is written once:
//
//   - lists.go: list fields whose entries may each hold several values
//     separated by commas, so that one environment variable can fill a list;
//   - metadata.go: a message's metadata whose keys start with a prefix.
package plugkit
