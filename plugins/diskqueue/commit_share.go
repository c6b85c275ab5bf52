package diskqueue

// Big puts (posts of more than smallPutBytes) share a commit up to
// commitPutBytes of them; small puts ride in every commit. A small post put
// while a commit runs waits for that commit's writes and fsync before its
// 200: with every big post pending in one commit, that was tens of MB.
const (
	smallPutBytes  = 1 << 20
	commitPutBytes = 8 << 20
)

// splitPuts picks the puts of the next commit, in order: every small one,
// and big ones up to commitPutBytes (at least one); the others are left
// for the commits that follow.
func splitPuts(puts []*putOp) (now, later []*putOp) {
	var big int64
	for _, p := range puts {
		if p.size > smallPutBytes {
			if big > 0 && big+p.size > commitPutBytes {
				later = append(later, p)
				continue
			}
			big += p.size
		}
		now = append(now, p)
	}
	return now, later
}
