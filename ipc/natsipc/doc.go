// Package natsipc runs the ipc API on NATS. [Connect] returns the same
// *ipc.Conn that ipc.Dial does, over a nats.go connection, so code written
// against package ipc — requests with cancellation, pub/sub, queue
// groups, streams, uploads, channels, typed handlers, dead letters — moves
// from one host to a NATS server or cluster by changing its constructor.
// It is a module of its own, so that programs using only ipc do not
// depend on nats.go or nats-server.
//
// # Tutorial
//
// Given no URL, Connect starts an embedded nats-server on a random
// loopback port, owned by the connection; c.Info().Server is its URL, for
// other processes to join:
//
//	c, err := natsipc.Connect(ctx, "") // or "nats://a:4222,nats://b:4222"
//	if err != nil { ... }
//	defer c.Close()
//	ipc.Handle(c, "orders.total", total, ipc.Queue("orders"))
//	n, err := ipc.Call[int](ctx, c, "orders.total", order, ipc.Idempotent())
//
// A program that configures nats.go itself (credentials, nkeys, server
// lists) wraps its connection with [New]; [NATS] returns the *nats.Conn
// beneath a connection, for JetStream or anything else ipc does not
// cover. [StartServer] runs an embedded server with ipc's server settings
// (users, permissions, maximum payload, TLS), JetStream, or as a node of
// a cluster. [StartDeadLetters] keeps dead letters in a JetStream stream.
//
// # How ipc maps onto NATS
//
// Subjects, wildcards, queue groups, per-publisher ordering and
// at-most-once delivery are NATS's own: ipc defined them after NATS. The
// rest:
//
//	ipc                          on NATS
//	---------------------------  ----------------------------------------------------
//	Publish, Subscribe,          PUB/HPUB and SUB (with the queue group). Each
//	QueueSubscribe               subscription's nats.go goroutine hands messages to
//	                             the Conn's bounded queue (nats.go's own limits are
//	                             kept at least as large, so the Conn's queue is the
//	                             one that fills and reports).
//	Headers                      NATS headers. ipc's own (Ipc-*) travel as headers
//	                             too (ipc.WireHeader). Keys must also suit nats.go,
//	                             which refuses "()/,;<=>?@[\]{} (ErrBadHeader);
//	                             values lose surrounding spaces, and CR or LF
//	                             become spaces, as nats.go sends them.
//	Request                      PUB with a reply subject on the Conn's inbox
//	                             (_INBOX.<id>.<n>, one wildcard subscription per
//	                             Conn); the time left travels in Ipc-Timeout
//	                             (nanoseconds), so the responder's context has
//	                             the requester's deadline.
//	ErrNoResponders              the server's status 503 answer (nats.go asks for
//	                             it), turned into ipc's status.
//	Cancellation                 an empty message on CancelPrefix + the reply
//	                             subject ($IPC.CANCEL._INBOX.…). A connection
//	                             listens to $IPC.CANCEL.> once it has a
//	                             subscription outside _INBOX (it may serve
//	                             requests) and cancels the request's context.
//	                             Every serving connection gets every
//	                             cancellation: cheap while cancellations are
//	                             rare, as they are.
//	Responder or requester       not tracked by NATS (Features.PeerDeath false):
//	death                        ipc.Keepalive makes a requester notice a dead
//	                             responder after three silent intervals; a
//	                             responder's context ends at the requester's
//	                             deadline; channels have heartbeats.
//	Streams, uploads, channels,  plain messages between the two Conns' inboxes,
//	big messages                 with ipc's credit-based flow control in Ipc-*
//	                             headers, exactly as over an ipc server.
//	PublishSync                  publish and flush. NATS does not acknowledge
//	                             routing (Features.RoutingAcks false), so it never
//	                             returns ErrNoSubscribers; it returns
//	                             ErrPermission when the server refused the
//	                             subject before answering the flush.
//	Flush                        PING/PONG, then a barrier through every
//	                             subscription: what the server sent before has
//	                             reached the Conn.
//	Drain                        every subscription drained in nats.go (the server
//	                             stops sending; what it sent is still handled),
//	                             handlers finish, answers are flushed, then Close.
//	Close                        closes the nats.go connection (and the embedded
//	                             server Connect started); a connection given to
//	                             New stays open without the Conn's subscriptions.
//	Reconnect                    nats.go's, resubscribing by itself. ReconnectWait,
//	                             ReconnectMaxWait and ReconnectJitter give its
//	                             delay (ipc's exponential backoff); MaxReconnects
//	                             (0: no limit), NoReconnect, ReconnectBufSize
//	                             (negative: publishes while disconnected fail
//	                             with ErrBufferFull); ConnectTimeout bounds each
//	                             dial and handshake; RetryOnConnect makes Connect
//	                             retry with the backoff until its ctx ends.
//	Heartbeat                    nats.go's PingInterval with at most 2 pings
//	                             unanswered: a silent server is dead after three
//	                             intervals. Negative: no pings.
//	State changes                nats.go's disconnect, reconnect and closed
//	                             handlers; requests and streams waiting on a
//	                             broken connection fail with ErrConnectionLost.
//	                             Requests being served go on through a
//	                             reconnection: their answers, buffered, still
//	                             reach requesters that waited.
//	Maximum payload              the server's max_payload minus HeaderReserve
//	                             (1 KiB kept for ipc's headers); ErrMaxPayload
//	                             before sending, as ever. An embedded server's
//	                             max_payload is ipc's MaxPayload (8 MiB) plus
//	                             HeaderReserve.
//	Slow consumers               a full Conn queue drops and reports
//	                             (ErrSlowConsumer, dead letters) as ever; drops by
//	                             nats.go reach the Conn too. A client too slow
//	                             for the server's max_pending is disconnected by
//	                             nats-server (and reconnects): NATS does not drop
//	                             for it as an ipc server does.
//	Token, TLS, Name, NoEcho     nats.Token, nats.Secure, nats.Name, nats.NoEcho.
//	Users, permissions           on an embedded server (ServerOptions.IPC): a
//	                             nats-server authenticator matches ipc.Users by
//	                             token or TLS certificate subject (never by Unix
//	                             uid: NATS clients come over TCP) or calls
//	                             Authenticate, and gives the user's ipc
//	                             Permissions to nats-server as they are (NATS's
//	                             semantics), adding $IPC.CANCEL.> to allow lists;
//	                             AllowResponses becomes a response permission
//	                             without a message limit, for ResponseTTL.
//	                             Refusals: publish → OnError (and PublishSync)
//	                             ErrPermission; request → fails at once with
//	                             ErrPermission; subscription → OnError. An
//	                             external server has its own configuration.
//	Rate limits, OnConnect,      nats-server has none: StartServer refuses them.
//	OnDisconnect
//	Broadcast                    [Broadcast] publishes on BroadcastPrefix +
//	                             subject, which ipc.OnBroadcast handlers receive.
//	Dead letters                 per Conn, on $IPC.DLQ.<reason>, as ever;
//	                             [StartDeadLetters] keeps them in JetStream with
//	                             JetStream's own delivery failures.
//	Errors                       nats.go's errors wrapped in the ipc sentinel of the
//	                             same meaning (ErrClosed, ErrMaxPayload, ErrAuth,
//	                             ErrPermission, ErrBufferFull, ErrConnectionLost…).
//
// # Plain NATS clients
//
// A program using any NATS client talks to ipc connections with plain
// messages: its requests get plain answers (a handler's error comes with
// header Ipc-Status: 500 and, as data, the msgpack map {message, name,
// code, stack} that procxy uses for errors everywhere), and it may follow
// the two conventions above: header Ipc-Timeout with the nanoseconds it
// will wait, and an empty message on CancelPrefix + its reply subject
// when it gives up.
//
// # Dead letters on JetStream
//
// [StartDeadLetters] creates a stream (IPC_DLQ by default) that captures
// the dead letters every ipc connection publishes, and feeds it from
// JetStream's MAX_DELIVERIES and MSG_TERMINATED advisories: the message a
// consumer failed on is fetched from its stream and kept with its
// subject, headers and why. [DeadLetters.All] lists them as
// ipc.DeadLetter values and [DeadLetters.Replay] sends them back where
// they came from.
package natsipc
