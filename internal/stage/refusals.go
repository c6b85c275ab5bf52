package stage

// RefusalStatuses are the answers of Meiro Events that say the event itself
// is wrong, so that retrying cannot help: such an event becomes a dead
// letter at once. Every other failure (429, 5xx, timeouts, and 401, 403,
// 404, 408, which a fixed URL or token cures) is retried without end.
// RefusedForGood (errors.go) is the one reader of this list.
var RefusalStatuses = []int{400, 409, 410, 413, 415, 422}
