package stage

// TimedOut is in the error of a delivery sent whole that had no answer
// within its timeout: the destination may still be working on it, and may
// take the event all the same. (One that ran out of time before it was sent
// is a connection error, without it.) meiro_http words a timeout with it; the disk_queue
// looks for it in the error a delivery is handed back with (through
// meiro_events' reject output an error arrives as text, as the refusals
// do), so that a request that may still be running does not make room for
// another.
const TimedOut = "no answer within the timeout"
