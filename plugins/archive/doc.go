// Package archive keeps every event in an hourly archive of JSON lines and
// replays a range of hours from it.
//
//   - output_netcore_archive.go: the netcore_archive output, which appends
//     each event to <dir>/<UTC date>/<UTC hour>.jsonl (or .jsonl.gz), fsync'd
//     before acknowledging, and applies the retention;
//   - input_netcore_archive.go: the netcore_archive input, which reads the
//     hours of a range in order, one message per line, and ends when done;
//   - layout.go: the file naming both share, and the retention;
//   - whole.go: finding where the whole records of a file end, so that a torn
//     tail left by a crash is cut off before appending and never replayed.
package archive
