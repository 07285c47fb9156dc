package ipc

// RespondError answers the request m with err, as a [Handle] function
// that returns err does: the requester's Request fails with a
// *RemoteError carrying err's message (and its Code, Name and Stack when
// err is a *RemoteError). It is for handlers of raw messages ([Msg]) that
// cannot answer; it fails with ErrNoReply if m expects no reply.
func (m *Msg) RespondError(err error) error { return m.RespondMsg(errorReply(err)) }

// Streaming reports whether the requester asked for a stream of replies
// ([Conn.RequestStream], [Stream]) rather than one ([Conn.Request],
// [Call]). A handler that can answer either way (procxy ipc reply runs a
// command and streams its output line by line) chooses by it; a
// [StreamWriter] for a request that is not streaming sends one reply.
func (m *Msg) Streaming() bool { return m.meta.kind == kindStreamReq }
