package rpc

// SetNextID makes the next request id id+1, for wrap-around tests.
func (c *Conn) SetNextID(id uint32) { c.ids.SetNext(id + 1) }

// Pending returns the number of calls waiting for an answer.
func (c *Conn) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Serving returns the number of abortable requests being served.
func (c *Conn) Serving() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.serving)
}

// LaneOn reports whether the shared-memory lane is in use.
func (c *Conn) LaneOn() bool { return c.lane.Load() != nil }

// AppendMeta and CutMeta expose the request metadata codec to the fuzz test.
var (
	AppendMeta = appendMeta
	CutMeta    = cutMeta
)
