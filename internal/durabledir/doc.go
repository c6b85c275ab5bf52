// Package durabledir makes a file's place on disk survive a power cut.
//
// fsync on a file makes its content durable, not its name: a new file (or a
// new directory) is durable only once the directory holding it is fsync'd,
// and that directory's own name only once its parent is. Without this, a
// power cut can take away a queue file or a dead-letter folder whose
// content was fsync'd, with every event in it.
//
// WriteFile is the one way the quarantine and the catalog write a file
// whole or not at all (new file, fsync, rename, folder fsync).
//
// Files: durabledir.go holds Make, SyncChain, SyncDir and WriteFile;
// durabledir_test.go proves Make and SyncDir on the power-cut file system
// (internal/testing/powercut).
package durabledir
