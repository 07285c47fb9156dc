// Package ipc connects processes that did not start each other — a daemon
// and its command-line tools, sidecars, an application's helpers, services
// on one host — with NATS's messaging semantics: subjects with wildcards,
// publish/subscribe, queue groups, request/reply. It adds what NATS lacks:
// Unix sockets, cancellation that reaches the responder, streams with flow
// control, messages larger than the maximum payload, bidirectional
// channels, and a server that tells a requester at once when its responder
// died. The same API runs on NATS (package natsipc) when one machine is not
// enough: change the constructor, not the code.
//
// # A server and its clients
//
// A [Server] is the hub: it listens on an address and routes messages
// between its clients. Code in the server process takes part through
// [Server.Conn], exactly like a client:
//
//	srv, err := ipc.Listen(ctx, "myapp") // a private socket for this user
//	...
//	ipc.Handle(srv.Conn(), "svc.add", func(ctx context.Context, x [2]int) (int, error) {
//		return x[0] + x[1], nil
//	})
//
// A client dials the same address and gets a [Conn]:
//
//	c, err := ipc.Dial(ctx, "myapp")
//	sum, err := ipc.Call[int](ctx, c, "svc.add", [2]int{2, 3}) // 5
//
// Addresses: a bare name ("myapp") is a Unix socket in the current user's
// private directory (0700, socket 0600); a path ("/run/myapp.sock",
// "unix:///run/myapp.sock") or "@name" (Linux abstract) is a Unix socket
// there; "tcp://host:port" is TCP; "tls://host:port" is TCP with TLS (the
// [TLS] option; set ClientAuth in the server's config for mutual TLS).
// [WithDialer] and [Server.Serve] take any other connection.
//
// # Subjects
//
// Subjects follow NATS's grammar exactly: "."-separated, case-sensitive,
// non-empty tokens without whitespace. In a subscription, a token "*"
// matches any one token and a last token ">" matches one or more. Subjects
// starting with "_INBOX." are reply subjects ([Conn.NewInbox]); those
// starting with "$" are the library's own ($IPC.DLQ.> carries dead
// letters): applications may subscribe to them, not publish. An invalid
// subject is an error at the call ([ErrBadSubject]).
//
// # Patterns
//
//   - Publish/subscribe: [Conn.Publish], [Conn.Subscribe] (a handler, one
//     message at a time, in order), pull subscriptions with a nil handler
//     ([Subscription.Next], [Subscription.Messages]), typed [Topic]s.
//     Delivery is at most once and in order per publisher.
//   - Queue groups: [Conn.QueueSubscribe] and the [Queue] option of Handle —
//     each message goes to one member of the group, so adding processes
//     adds capacity.
//   - Request/reply: [Conn.Request], or typed with [Handle] and [Call]. The
//     requester's context bounds the call; cancelling it, or its deadline
//     passing, ends the responder's context ([Msg.Context]). A request
//     nobody subscribes to fails at once with [ErrNoResponders]; an error
//     the handler returns arrives as a *[RemoteError]; a responder that dies
//     fails the request with [ErrResponderGone].
//   - Broadcast: [Server.Broadcast] reaches every client's [OnBroadcast]
//     handler; publishing to a subject everyone subscribes reaches everyone.
//   - Streams: [Conn.RequestStream] / [Msg.Stream] (typed: [Stream],
//     [HandleStream]) send a stream of replies; [Conn.Upload] / [Msg.Upload]
//     ([HandleUpload]) a stream of request chunks. The receiver grants
//     credit, so a slow side bounds memory on both. [Call] sends requests
//     and answers larger than the maximum payload as streams by itself.
//   - Channels: [OpenChannel] and [ListenChannel] make a named,
//     bidirectional, typed channel between two connections; each end learns
//     when the other closes it or goes away.
//
// # Resilience
//
// A client reconnects with exponential backoff and jitter ([Reconnect]),
// subscribes again, and sends the publishes it kept while disconnected (up
// to [ReconnectBuffer]; then [ErrBufferFull]). Requests waiting when the
// connection broke fail at once with [ErrConnectionLost]; requests marked
// [Idempotent] are retried. [OnState] reports every state change. Both
// sides send heartbeats: a peer silent for three intervals is dead.
// [Conn.Drain] and [Server.Shutdown] stop taking work, let what is in
// flight finish, flush, then close; Close is immediate.
//
// Messages are bounded: [MaxPayload] (8 MiB by default) is enforced before
// anything is allocated, on both sides, and a sender learns it at the call
// ([ErrMaxPayload]). Every subscription has a bounded queue
// ([PendingLimits]) and the server a bounded queue per client
// ([MaxPending]); past them messages are dropped, counted
// ([Subscription.Dropped]) and reported ([ErrSlowConsumer] to [OnError]):
// the server never waits for one slow client.
//
// # Security
//
// A server may require a token ([Users], [Token]); on a Unix socket the
// peer's uid, gid and pid are known (a [User] can be matched by UID), and on
// TLS the client certificate's subject. [Permissions] allow and deny
// publishing and subscribing by subject pattern with NATS's semantics,
// including AllowResponses. [RateLimit] bounds messages and bytes per
// second per identity. Authentication failures are logged without the
// secret.
//
// # Reliability and observability
//
// Opt-in: retries with backoff for idempotent requests ([WithRetry]), a
// circuit breaker per subject ([WithBreaker], [ErrCircuitOpen]), and a
// bounded dead-letter queue ([Conn.DeadLetters]) for messages that could
// not be delivered or handled — a [Conn.PublishSync] nobody received, a
// [Retry] handler that failed every attempt, an expired message
// ([Msg.Expires]), a slow-consumer drop — readable, replayable, and
// published on $IPC.DLQ.<reason>. [Conn.Stats] and [Server.Stats] count
// messages, bytes, drops, errors and reconnects, with a request latency
// [Histogram]; an [Observer] sees every message and request (and can carry
// a W3C traceparent in the headers); [Logger] takes a *slog.Logger.
//
// The wire protocol — rpc/wire frames with ipc operations — is described
// in docs/PROTOCOL.md of the repository.
package ipc
