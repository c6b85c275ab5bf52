package diskqueue

// seqRuns is a FIFO of ascending sequence numbers kept as runs of
// consecutive numbers. The records of a backlog were stored one after the
// other, so a million waiting events are a handful of runs instead of 8 MB
// of heap (which the garbage collector's headroom would multiply).
type seqRuns struct {
	runs []seqRun
	n    int
}

type seqRun struct{ first, last uint64 }

func (r *seqRuns) len() int { return r.n }

// push appends seq, which is above every number held.
func (r *seqRuns) push(seq uint64) {
	if last := len(r.runs) - 1; last >= 0 && r.runs[last].last+1 == seq {
		r.runs[last].last = seq
	} else {
		r.runs = append(r.runs, seqRun{seq, seq})
	}
	r.n++
}

// pop takes the oldest number.
func (r *seqRuns) pop() (uint64, bool) {
	if len(r.runs) == 0 {
		return 0, false
	}
	seq := r.runs[0].first
	if seq == r.runs[0].last {
		r.runs = r.runs[1:]
		if len(r.runs) == 0 {
			r.runs = nil // let the backing array go
		}
	} else {
		r.runs[0].first++
	}
	r.n--
	return seq, true
}

// appendFirst appends up to max of the oldest numbers to dst, keeping them.
func (r *seqRuns) appendFirst(dst []uint64, max int) []uint64 {
	for _, run := range r.runs {
		for seq := run.first; seq <= run.last; seq++ {
			if max == 0 {
				return dst
			}
			dst = append(dst, seq)
			max--
		}
	}
	return dst
}
