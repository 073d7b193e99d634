package server

// RefusalLogBurst is how many refusals of one uid are logged per window.
const RefusalLogBurst = refusalLogBurst
