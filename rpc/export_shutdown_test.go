package rpc

// Draining reports whether Shutdown has begun.
func (c *Conn) Draining() bool { return c.draining.Load() }
