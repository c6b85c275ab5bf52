// Package archive keeps every event in an hourly archive of JSON lines and
// replays a range of hours from it.
//
//   - output_netcore_archive.go: the netcore_archive output, which appends
//     each event to <dir>/<UTC date>/<UTC hour>.jsonl (or .jsonl.gz), fsync'd
//     before acknowledging, and applies the retention;
//   - hourfile.go: opening an hour file to append to, and what the output
//     does with one found torn or damaged at start;
//   - input_netcore_archive.go: the netcore_archive input, which reads the
//     hours of a range in order, one message per line, reports what it cannot
//     read and ends when done;
//   - lines.go: reading the lines of the parts of a file that read back whole;
//   - layout.go: the file naming both share, listing a range, the retention;
//   - whole.go, members.go: finding what of a file reads back whole, what is a
//     torn tail and what is damage.
//
// # Torn tails and damage
//
// Every byte the output acknowledges was fsync'd as part of one batch, and
// a batch is appended whole after the previous one: one write of lines
// ending in a newline, or one gzip member. So the only bytes of an hour file
// that can be unacknowledged are those of the last batch, when the process
// died while writing it, and they are a torn tail: bytes after the last
// newline, or a last gzip member cut short (the decoder reaches the end of
// the file inside it). The end of the last whole record is therefore the end
// of the last acknowledged write, and that is all the output ever cuts.
// Damage near the end of a file can look the same (a bit flipped in the
// last ~20 bytes of compressed data, a flipped final newline), so the tail
// is first copied aside (<hour>.torn-<unix>.jsonl[.gz], fsync'd): no byte
// is ever destroyed. A member header with flags the writer never sets is
// damage, not a tear.
//
// This is known from the member boundaries, with no record of acknowledged
// lengths kept beside each file: such a record would cost a second fsync per
// batch and could itself be torn. A gzip member carries its own CRC-32 and
// length, so damage within the file is told from a tear: a member that fails
// its checksum, or one followed by members that decode whole, was written
// whole and damaged later. The output then moves the file aside whole
// (<hour>.damaged-<unix>.jsonl.gz), counts it and logs the damaged bytes;
// the replay reads every member that decodes whole, from the file moved
// aside as from any other, and reports the rest. The one case this reading
// gets wrong errs on the safe side: a power cut can leave garbage, not a
// short member, where the last unacknowledged batch was, and that file is
// moved aside and reported although its last events were archived again.
// Plain files carry no checksum and are never moved aside: a flipped byte in
// one is replayed as it is. A replay reports a torn tail of a file not
// written for a minute, since it cannot tell it from damage.
package archive
