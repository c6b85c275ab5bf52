package stage

// TimedOut words a TimeoutError (errors.go) for operators: meiro_http says
// it in the error of a delivery sent whole that had no answer in time. It is
// read by people, in logs and on the inspector page; stages tell a timeout
// by IsTimeout, never by these words.
const TimedOut = "no answer within the timeout"
