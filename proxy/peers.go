package proxy

// PeerResult is one other replica's answer to a cache bust passed on to it, as BustReport
// carries it. It has the fields and JSON names of cluster.PeerResult, which the Buster converts
// to it: the front knows nothing of the other replicas but what it reports.
type PeerResult struct {
	// Peer is the peer's address and port, e.g. "10.42.0.17:9090".
	Peer string `json:"peer"`
	// Status is the HTTP status of the peer's last answer, zero when there was none.
	Status int `json:"status,omitempty"`
	// Err says why the peer failed; empty when it took the bust.
	Err string `json:"error,omitempty"`
	// Attempts is how many requests were sent to the peer.
	Attempts int `json:"attempts"`
}
