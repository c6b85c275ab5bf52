// Package quarantine keeps the posts of senders that are not (yet) on the
// allowlist, instead of refusing them, until a person releases or drops
// them.
//
// Netcore does not publish the addresses its CE journeys post from, and it
// gives up a webhook for good after a few retries over about 4 h 45 min. A
// post from an address nobody listed yet is therefore kept here, durably
// (written to a new file, fsync'd, renamed into place and its folder
// fsync'd before the 200), never delivered until released, and bounded in
// bytes and in posts per address.
//
// The store is a folder, `<dir>/<address>/<received>-<request id>.post`,
// one file a post: a JSON header line (who posted, when, its panels) and
// the post's data field byte for byte. A file is whole or absent, never
// torn (it appears by rename), so a crash at any step loses nothing that
// was answered 200 and leaves no half post. Reading needs no lock:
// `netcore-connect quarantine list` reads it beside a running receiver.
//
// One receiver owns the folder (an exclusive lock on `<dir>/.lock`).
// Release moves posts into the receiver's delivery queue, which only the
// receiver can do, so a command asks it through a request file in
// `<dir>/requests` and waits for the result file; the receiver serves
// requests as they come, and one left by a receiver killed midway is served
// again at its next start (a post stored in the queue but not yet removed
// from here is then stored again, and removed as a repeat by its event ids
// within the queue's dedupe window; after it, delivered again: at least
// once). Drop deletes files; without a running receiver the command does
// it itself, holding the lock.
//
// Files: store.go (the folder, its bounds and its summary by address),
// list.go (reading it, by the owner at start and by list beside it),
// post.go (one post's file), requests.go (release and drop asked of the
// receiver).
package quarantine
